// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title MockUSD
/// @notice Development fee token: 6 decimals and a capped faucet. Never deploy to a real network.
contract MockUSD is ERC20 {
    /// @notice Most a single faucet call mints (100,000 mUSD).
    uint256 public constant FAUCET_CAP = 100_000e6;

    error FaucetCapExceeded(uint256 amount, uint256 cap);

    constructor() ERC20("Mock USD", "mUSD") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice Mint `amount` (≤ FAUCET_CAP) to the caller.
    function faucet(uint256 amount) external {
        if (amount > FAUCET_CAP) revert FaucetCapExceeded(amount, FAUCET_CAP);
        _mint(msg.sender, amount);
    }
}
