package certreload

// maxFileBytes bounds what is read of each file: a certificate chain and a
// key are a few kilobytes.
const maxFileBytes = 1 << 20
