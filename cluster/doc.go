// Package cluster will make kstore nodes protoactor cluster members: membership, and reaching a
// node's actors by name. (A later issue builds it; a single node needs none of it.)
package cluster
