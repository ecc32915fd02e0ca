"""The real-time edge: Socket.IO gateway and the fan-out that routes events to sockets."""
