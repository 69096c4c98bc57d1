"""BGP message codec: bytes in, typed messages out, and back. No sockets, no clocks."""
