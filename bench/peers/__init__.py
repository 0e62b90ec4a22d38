"""The systems compared, each behind the same small protocol (`Peer`)."""
