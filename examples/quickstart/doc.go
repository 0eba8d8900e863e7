// Package quickstart holds the programs of the README's quick start: a
// device agent (./device) and a technician tool (./technician). Its test
// checks that the README shows their code and runs the README's commands.
package quickstart
