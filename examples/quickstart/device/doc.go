// Command device is the device-agent quick start of the README: a rooftop
// HVAC controller that trusts one anchor and serves one operation over TCP.
package main
