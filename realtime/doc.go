// Package realtime holds Kiln's realtime interfaces beside HTTP: the
// protos and generated code of the gRPC services (grpcapi serves them),
// the Socket.IO server mounted on the gateway's port (socketio), and what
// they share: tail (a gap-free follower of the EVENTS stream) and feed (a
// process-wide fan-out of the stream: order and chat events for the pushes,
// the whole stream for Subscribe).
package realtime
