// Command fleetsim simulates how a revocation reaches a fleet of devices
// that never go online (docs/PROTOCOL.md section 12): the owner revokes a
// technician whose phone was stolen, and every other technician's routine
// visit carries the signed status update to the device visited. It prints,
// day by day, the fraction of devices that would still accept the stolen
// token, what the thief achieves if he keeps visiting devices himself, the
// bytes an update adds to a visit, and the device's cost of installing an
// update as a ratio to one signature verification.
//
// Everything is real but the network and the clock: an authorization
// service (through its Go API), device agents without a clock
// (device.ClockLowerBound) that take status updates, and technicians'
// client sessions over in-memory links, with simulated time.
//
//	go run ./examples/fleetsim                       # 10,000 devices, 200 technicians, 30 days
//	go run ./examples/fleetsim -devices 1000 -technicians 20 -days 10
//
// The test runs a short setting and checks the simulation's invariants.
package main
