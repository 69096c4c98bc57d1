"""BFD, Bidirectional Forwarding Detection (RFC 5880, single hop RFC 5881), asynchronous mode.

`packet` is the Control packet codec and the reception checks that need no session, `auth` the
authentication of RFC 5880 6.7, `machine` the sans-IO session state machine (packets and timer
expiries in, packets and state changes out). These three touch no socket and no clock; `runtime`
is the asyncio shell that carries their actions out on UDP 3784.
"""
