// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

import "./TestToken.sol";

/// Deploys TestTokens; each one announces itself with ERC20NewToken, the event watchChain's
/// createToken module reads.
contract TestTokenFactory {
    address[] public tokens;

    event ERC20NewToken(
        address indexed token, string name, string symbol, address indexed creator, uint256 initialSupply
    );

    function erc20DeployToken(string calldata name, string calldata symbol, uint256 initialSupply)
        external
        returns (address)
    {
        TestToken token = new TestToken(name, symbol, msg.sender, initialSupply);
        tokens.push(address(token));
        emit ERC20NewToken(address(token), name, symbol, msg.sender, initialSupply);
        return address(token);
    }

    function numTokens() external view returns (uint256) {
        return tokens.length;
    }
}
