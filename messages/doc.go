// Package messages is kstore's wire protocol: the protobuf messages other actors send to a node
// and the replies they get (kstore.proto, generated into kstore.pb.go), the Kubernetes status
// errors those replies carry (Error), and the JSON form of commands, results and keys used on
// the command line and in files, which is the seed's wire format byte for byte (json.go).
//
// The package holds no state.
package messages

//go:generate protoc --go_out=.. --go_opt=paths=source_relative --proto_path=.. messages/kstore.proto
