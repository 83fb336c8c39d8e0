// Package realtime holds Kiln's realtime interfaces beside HTTP: the
// protos and generated code of the gRPC services (grpcapi serves them),
// the Socket.IO server mounted on the gateway's port (socketio), and what
// they share: tail (a gap-free follower of the EVENTS stream) and feed (the
// process's one fan-out of order and chat events).
package realtime
