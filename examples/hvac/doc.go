// Command hvac is the main demo of the Secure Device Access SDK: a building
// owner's authorization service, two simulated rooftop HVAC controllers and
// the apps of three technicians, all in one process on loopback.
//
//	go run ./examples/hvac
//
// It prints a transcript: who asks for what and whether the policies grant
// it, what each operation on a controller returns, and how the controllers
// refuse a replayed request, a stolen token, a forged token and operations
// outside a token's scope, with the reason from the controller's audit
// decision. rooftop-1 speaks SDA v1; rooftop-2 shows v2: a structured scope
// bounding set-temperature to 16..28 C, and responses signed by the
// controller. Every step checks its expected outcome: the command exits 1,
// with a message on stderr, if one differs.
package main
