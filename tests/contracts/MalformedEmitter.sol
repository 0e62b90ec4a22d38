// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// Emits a log with TokenTransferred's topic whose data is not TokenTransferred's: what a buggy
/// or hostile token could do. watchChain must log and skip it, and go on.
contract MalformedEmitter {
    bytes32 constant TOKEN_TRANSFERRED = keccak256("TokenTransferred(address,address,uint256,string,string,uint8)");

    function emitMalformed(address to) external {
        bytes32 topic = TOKEN_TRANSFERRED;
        bytes32 from = bytes32(uint256(uint160(msg.sender)));
        bytes32 recipient = bytes32(uint256(uint160(to)));
        assembly {
            mstore(0, 0x1234)
            log3(0, 32, topic, from, recipient)
        }
    }
}
