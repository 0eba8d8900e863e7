// Command sdactl is a command-line tool for integrators of Secure Device
// Access.
package main
