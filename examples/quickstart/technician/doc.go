// Command technician is the technician-tool quick start of the README: it
// runs one operation on a device with a token and the key the token is
// bound to.
package main
