# pragma version 0.4.3
# @title Fee-on-transfer ERC-20, for tests only
# @notice Every transfer burns 1 % of the amount: the receiver gets 99 %.
#         `refuse` makes transfers to one address fail (a blocklisting token).

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
refused: public(address)

FEE_BPS: constant(uint256) = 100


@external
def mint(to: address, amount: uint256):
    self.balanceOf[to] += amount


@external
def refuse(account: address):
    self.refused = account


@internal
def _move(sender: address, receiver: address, amount: uint256):
    assert receiver != self.refused, "refused"
    self.balanceOf[sender] -= amount
    self.balanceOf[receiver] += amount - amount * FEE_BPS // 10000


@external
def transfer(receiver: address, amount: uint256) -> bool:
    self._move(msg.sender, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    self.allowance[msg.sender][spender] = amount
    return True


@external
def transferFrom(sender: address, receiver: address, amount: uint256) -> bool:
    self.allowance[sender][msg.sender] -= amount
    self._move(sender, receiver, amount)
    return True
