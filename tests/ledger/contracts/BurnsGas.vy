# pragma version 0.4.3
# @title A payee contract that burns all the gas it is given, for tests only
# @notice `assert ..., UNREACHABLE` compiles to INVALID, which consumes all gas.


@external
@payable
def __default__():
    assert msg.value == 0, UNREACHABLE
