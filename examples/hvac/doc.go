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
// controller.
//
// Then offline delegation on rooftop-2 (v2): the owner's policy lets
// service-co technicians pass read-data on, one link deep, and the service
// puts that into alice's v2 token. alice delegates read-data for two hours
// to the key of sam, a subcontractor, without the service (client.Delegate);
// sam checks the delegated token with the trust anchor, reads the data with
// it and his own key (the controller's audit names the chain of keys), and
// is refused configure (scope). alice's attempt to pass on more than her
// scope is refused by client.Delegate, and the same widening link signed by
// hand (token.SignLink) is refused by the controller's delegation check; a
// junior's token, whose policy allows no delegation, cannot be delegated
// (token.ErrNotDelegable).
//
// The last section is a stolen phone. rooftop-2 takes status updates and
// never goes online. jim reads data on it with a v2 token; his phone is
// stolen; the owner revokes every token of jim through the administration
// API (POST /admin/v1/revocations, with the owner's admin API key) and sees
// in the ledger which tokens the revocation covers. alice's next routine
// visit carries the status update her app fetched with her token, and
// rooftop-2 installs it; the thief, who holds jim's key and token and
// fetches nothing, is then refused on rooftop-2, whose audit decision names
// the revocation check and the subject cut-off.
//
// Every step checks its expected outcome: the command exits 1, with a
// message on stderr, if one differs.
package main
