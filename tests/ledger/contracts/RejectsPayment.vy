# pragma version 0.4.3
# @title A payee contract that refuses native coin, for tests only


@external
@payable
def __default__():
    raise "no payments"
