// Package host is what strata needs of the machine it builds on, apart
// from running steps: the checks of `strata check` and of the start of a
// build (Preflight), `strata unpriv-setup`, which gives a user subordinate
// ids and a store, and the id maps a rootless build's user namespaces use,
// read from /etc/subuid and /etc/subgid.
package host
