// Package certreload serves a TLS certificate and private key read from
// two PEM files and reloads them when they change, without a restart and
// without dropping connections: a [Reloader]'s GetCertificate goes in a
// [tls.Config], so every new handshake uses the pair loaded last, while
// established connections keep the one they were made with.
//
// [Reloader.Reload] reloads at once (sdactl authserver calls it on SIGHUP);
// [Reloader.Watch] polls the files and reloads when their contents change,
// which also follows a Kubernetes secret volume (updated by swapping a
// symlink, which a watch on the files' modification times can miss). A new
// pair that cannot be loaded (a file missing or half-written, a key that
// does not match the certificate) is refused and the old pair stays in
// use: a bad renewal does not take the service down.
//
// # Security considerations
//
// The key file is read by the process on every change; keep it readable by
// the service's user only. The package checks that the key matches the
// certificate, not that the certificate is valid for the service's name or
// time: a pair that clients will refuse is still loaded (and clients then
// fail the handshake), as a web server does.
package certreload
