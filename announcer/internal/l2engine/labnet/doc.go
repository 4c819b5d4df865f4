// Package labnet builds the small LANs the speakers' privileged tests run on: two network
// namespaces joined by a veth pair, created and deleted by the test itself, so that the tests
// send traffic only where nothing else lives. It is Linux-only and for tests only.
package labnet
