"""The gRPC servicers: decode, await the node driver, encode. No business logic here."""
