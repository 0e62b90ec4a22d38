"""Chain access: the async JSON-RPC client, event modules, Multicall3 facts."""
