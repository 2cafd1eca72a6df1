# pragma version 0.4.3
# @title Pictor Escrow
# @notice Per-job escrow paid out by cumulative EIP-712 vouchers, worker and
#         checker stake with an unbonding delay, and slashing by a checker quorum.
# @dev Theory of operation
#   Jobs. A requester deposits a budget for `job_id` (the hash of the job spec)
#   in native coin or in one ERC-20 token, with a deadline. Top-ups by the same
#   requester add to the budget and may only push the deadline later.
#   Vouchers. For each payee (worker or checker) the requester signs
#   Voucher(jobId, payee, cumulative): the total it owes that payee for the job
#   so far. The contract remembers what it has paid each (job, payee) and pays
#   `cumulative - paid`, so a newer voucher supersedes older ones, replay pays
#   nothing, and one redeem per payee per job settles any number of frames.
#   Time. Vouchers redeem while block.timestamp <= deadline + GRACE_S. Only after
#   that (strictly later) can anyone refund the remainder to the requester; the
#   refund closes the job and no voucher pays afterwards. The grace period gives
#   payees holding vouchers signed just before the deadline time to redeem.
#   Stake. Native coin only. `request_unbond` moves stake into an unbonding
#   bucket that can be withdrawn UNBONDING_S later; unbonding stake stays
#   slashable, so a cheat cannot escape a fraud proof by unbonding first.
#   Slashing. A worker is slashed for a job when SLASH_QUORUM distinct
#   registered checkers (each holding >= CHECKER_MIN_STAKE active stake, neither
#   the worker nor the job's requester) sign Fraud(jobId, worker, amount). Signatures must be ordered by
#   ascending signer address, which proves distinctness without a loop. A worker
#   is slashed at most once per job. Half the slashed amount goes to the job's
#   requester, the rest in equal parts to the signing checkers, credited to
#   pull-payment balances (`withdraw_credit`), so one reverting recipient cannot
#   block a slash.
#   Storage. A job is two slots: `job_meta` packs requester (bits 0-159),
#   deadline (160-223), refunded (224) and "pays in a token" (225); `job_remaining`
#   is the budget left. The token address gets a slot only for token jobs. One
#   slot fewer per deposit and one cold read fewer per redeem is ~25k gas a job.
#   Payments use raw_call with value (never `send`, whose 2,300-gas stipend
#   breaks contract wallets); every external state change is nonreentrant and
#   updates storage before it transfers.

from ethereum.ercs import IERC20

struct Job:
    requester: address
    token: address  # empty(address) = native coin
    remaining: uint256  # budget not yet paid out or refunded
    deadline: uint256  # unix seconds
    refunded: bool

struct Stake:
    active: uint256
    unbonding: uint256
    unbond_at: uint256  # unix seconds when `unbonding` becomes withdrawable

struct Sig:
    v: uint8
    r: bytes32
    s: bytes32

struct Voucher:
    job_id: bytes32
    payee: address
    cumulative: uint256
    sig: Sig

event Deposited:
    job_id: indexed(bytes32)
    requester: indexed(address)
    token: address
    amount: uint256
    deadline: uint256

event Redeemed:
    job_id: indexed(bytes32)
    payee: indexed(address)
    amount: uint256
    cumulative: uint256

event Refunded:
    job_id: indexed(bytes32)
    requester: indexed(address)
    amount: uint256

event Staked:
    account: indexed(address)
    amount: uint256

event UnbondRequested:
    account: indexed(address)
    amount: uint256
    unbond_at: uint256

event StakeWithdrawn:
    account: indexed(address)
    amount: uint256

event CheckerRegistered:
    checker: indexed(address)

event Slashed:
    job_id: indexed(bytes32)
    worker: indexed(address)
    amount: uint256

event Credited:
    account: indexed(address)
    amount: uint256

event CreditWithdrawn:
    account: indexed(address)
    amount: uint256

MAX_BATCH: constant(uint256) = 64
REFUNDED_BIT: constant(uint256) = 1 << 224
TOKEN_BIT: constant(uint256) = 1 << 225
DEADLINE_MAX: constant(uint256) = (1 << 64) - 1
MAX_SIGNERS: constant(uint256) = 16
# secp256k1n / 2: larger s values are the malleable twin of a valid signature.
SECP256K1_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
VOUCHER_TYPEHASH: constant(bytes32) = keccak256(
    "Voucher(bytes32 jobId,address payee,uint256 cumulative)"
)
FRAUD_TYPEHASH: constant(bytes32) = keccak256(
    "Fraud(bytes32 jobId,address worker,uint256 amount)"
)

GRACE_S: public(immutable(uint256))
UNBONDING_S: public(immutable(uint256))
SLASH_QUORUM: public(immutable(uint256))
CHECKER_MIN_STAKE: public(immutable(uint256))
DOMAIN_SEPARATOR: public(immutable(bytes32))

job_meta: HashMap[bytes32, uint256]
job_remaining: HashMap[bytes32, uint256]
job_token: HashMap[bytes32, address]
paid: public(HashMap[bytes32, HashMap[address, uint256]])
stakes: public(HashMap[address, Stake])
is_checker: public(HashMap[address, bool])
slashed: public(HashMap[bytes32, HashMap[address, bool]])
credit: public(HashMap[address, uint256])


@deploy
def __init__(grace_s: uint256, unbonding_s: uint256, slash_quorum: uint256, checker_min_stake: uint256):
    assert slash_quorum > 0 and slash_quorum <= MAX_SIGNERS, "bad quorum"
    assert checker_min_stake > 0, "checkers must stake"
    GRACE_S = grace_s
    UNBONDING_S = unbonding_s
    SLASH_QUORUM = slash_quorum
    CHECKER_MIN_STAKE = checker_min_stake
    DOMAIN_SEPARATOR = keccak256(abi_encode(
        DOMAIN_TYPEHASH, keccak256("Pictor Escrow"), keccak256("1"), chain.id, self
    ))


# ---------------------------------------------------------------- jobs

@external
@payable
@nonreentrant
def deposit(job_id: bytes32, deadline: uint256, token: address, amount: uint256):
    """
    @notice Open or top up the escrow of `job_id`. Native coin: token is
            empty(address) and amount must equal msg.value. ERC-20: msg.value is 0
            and `amount` is pulled with transferFrom (approve first).
    """
    assert amount > 0, "zero deposit"
    assert deadline > block.timestamp, "deadline passed"
    assert deadline <= DEADLINE_MAX, "deadline too far"
    job: Job = self._load(job_id)
    if job.requester == empty(address):
        job = Job(requester=msg.sender, token=token, remaining=0, deadline=deadline, refunded=False)
        if token != empty(address):
            self.job_token[job_id] = token
    else:
        assert job.requester == msg.sender, "not requester"
        assert job.token == token, "token mismatch"
        assert not job.refunded, "refunded"
        assert deadline >= job.deadline, "deadline earlier"
    job.deadline = deadline
    self.job_meta[job_id] = self._pack(job)
    self.job_remaining[job_id] = job.remaining + amount
    if token == empty(address):
        assert msg.value == amount, "value != amount"
    else:
        assert msg.value == 0, "value with token"
        assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "transferFrom failed"
    log Deposited(job_id=job_id, requester=msg.sender, token=token, amount=amount, deadline=deadline)


@external
@nonreentrant
def redeem(job_id: bytes32, payee: address, cumulative: uint256, sig: Sig):
    """
    @notice Pay `payee` what the requester's voucher owes beyond what was paid.
            Anyone may submit; the money always goes to `payee`.
    """
    job: Job = self._load(job_id)
    amount: uint256 = self._settle(job_id, job, payee, cumulative, sig)
    self.job_remaining[job_id] = job.remaining - amount
    self._pay(job.token, payee, amount)


@external
@nonreentrant
def redeem_batch(vouchers: DynArray[Voucher, MAX_BATCH]):
    """
    @notice Redeem many vouchers in one transaction (any jobs, any payees).
            All or nothing: one bad voucher reverts the batch, so callers
            verify vouchers off-chain first.
    """
    for v: Voucher in vouchers:
        job: Job = self._load(v.job_id)
        amount: uint256 = self._settle(v.job_id, job, v.payee, v.cumulative, v.sig)
        self.job_remaining[v.job_id] = job.remaining - amount
        self._pay(job.token, v.payee, amount)


@external
@nonreentrant
def refund(job_id: bytes32):
    """
    @notice After deadline + grace, return the unpaid remainder to the
            requester and close the job. Anyone may call; the money goes to the
            requester.
    """
    job: Job = self._load(job_id)
    assert job.requester != empty(address), "no such job"
    assert not job.refunded, "refunded"
    assert block.timestamp > job.deadline + GRACE_S, "grace not over"
    job.refunded = True
    self.job_meta[job_id] = self._pack(job)
    self.job_remaining[job_id] = 0
    if job.remaining > 0:
        self._pay(job.token, job.requester, job.remaining)
    log Refunded(job_id=job_id, requester=job.requester, amount=job.remaining)


@view
@external
def jobs(job_id: bytes32) -> Job:
    return self._load(job_id)


@view
@external
def voucher_digest(job_id: bytes32, payee: address, cumulative: uint256) -> bytes32:
    return self._digest(keccak256(abi_encode(VOUCHER_TYPEHASH, job_id, payee, cumulative)))


@view
@external
def fraud_digest(job_id: bytes32, worker: address, amount: uint256) -> bytes32:
    return self._digest(keccak256(abi_encode(FRAUD_TYPEHASH, job_id, worker, amount)))


# ---------------------------------------------------------------- stake

@external
@payable
@nonreentrant
def stake():
    assert msg.value > 0, "zero stake"
    self.stakes[msg.sender].active += msg.value
    log Staked(account=msg.sender, amount=msg.value)


@external
@nonreentrant
def request_unbond(amount: uint256):
    """
    @notice Start unbonding `amount`; withdrawable UNBONDING_S from now. A new
            request restarts the clock for the whole unbonding bucket, so stake
            cannot dodge a pending fraud proof by unbonding in slices.
    """
    st: Stake = self.stakes[msg.sender]
    assert amount > 0 and amount <= st.active, "bad amount"
    st.active -= amount
    st.unbonding += amount
    st.unbond_at = block.timestamp + UNBONDING_S
    self.stakes[msg.sender] = st
    log UnbondRequested(account=msg.sender, amount=amount, unbond_at=st.unbond_at)


@external
@nonreentrant
def withdraw_stake():
    st: Stake = self.stakes[msg.sender]
    assert st.unbonding > 0, "nothing unbonding"
    assert block.timestamp >= st.unbond_at, "still unbonding"
    self.stakes[msg.sender].unbonding = 0
    raw_call(msg.sender, b"", value=st.unbonding)
    log StakeWithdrawn(account=msg.sender, amount=st.unbonding)


@external
@nonreentrant
def register_checker():
    assert self.stakes[msg.sender].active >= CHECKER_MIN_STAKE, "stake too low"
    self.is_checker[msg.sender] = True
    log CheckerRegistered(checker=msg.sender)


@external
@nonreentrant
def slash(job_id: bytes32, worker: address, amount: uint256, sigs: DynArray[Sig, MAX_SIGNERS]):
    """
    @notice Slash `worker` by `amount` (capped at its active + unbonding stake)
            on a fraud proof signed by SLASH_QUORUM registered checkers.
    """
    job: Job = self._load(job_id)
    assert job.requester != empty(address), "no such job"
    assert not self.slashed[job_id][worker], "already slashed"
    assert len(sigs) >= SLASH_QUORUM, "below quorum"
    signers: DynArray[address, MAX_SIGNERS] = self._fraud_signers(job_id, worker, job.requester, amount, sigs)
    self.slashed[job_id][worker] = True
    taken: uint256 = self._take_stake(worker, amount)
    share: uint256 = taken // 2 // len(signers)
    for signer: address in signers:
        self._credit(signer, share)
    self._credit(job.requester, taken - share * len(signers))
    log Slashed(job_id=job_id, worker=worker, amount=taken)


@external
@nonreentrant
def withdraw_credit():
    owed: uint256 = self.credit[msg.sender]
    assert owed > 0, "no credit"
    self.credit[msg.sender] = 0
    raw_call(msg.sender, b"", value=owed)
    log CreditWithdrawn(account=msg.sender, amount=owed)


# ---------------------------------------------------------------- internals

@view
@internal
def _load(job_id: bytes32) -> Job:
    meta: uint256 = self.job_meta[job_id]
    token: address = empty(address)
    if meta & TOKEN_BIT != 0:
        token = self.job_token[job_id]
    return Job(
        requester=convert(convert(meta & convert(max_value(uint160), uint256), uint160), address),
        token=token,
        remaining=self.job_remaining[job_id],
        deadline=(meta >> 160) & DEADLINE_MAX,
        refunded=meta & REFUNDED_BIT != 0,
    )


@pure
@internal
def _pack(job: Job) -> uint256:
    meta: uint256 = convert(job.requester, uint256) | (job.deadline << 160)
    if job.refunded:
        meta |= REFUNDED_BIT
    if job.token != empty(address):
        meta |= TOKEN_BIT
    return meta


@view
@internal
def _digest(struct_hash: bytes32) -> bytes32:
    return keccak256(concat(b"\x19\x01", DOMAIN_SEPARATOR, struct_hash))


@view
@internal
def _recover(digest: bytes32, sig: Sig) -> address:
    assert convert(sig.s, uint256) <= SECP256K1_HALF_N, "malleable signature"
    return ecrecover(digest, sig.v, sig.r, sig.s)


@internal
def _settle(job_id: bytes32, job: Job, payee: address, cumulative: uint256, sig: Sig) -> uint256:
    # Checks and the paid-so-far update for one voucher; returns the amount due.
    assert job.requester != empty(address), "no such job"
    assert not job.refunded, "refunded"
    assert block.timestamp <= job.deadline + GRACE_S, "voucher expired"
    digest: bytes32 = self._digest(keccak256(abi_encode(VOUCHER_TYPEHASH, job_id, payee, cumulative)))
    assert self._recover(digest, sig) == job.requester, "bad signature"
    already: uint256 = self.paid[job_id][payee]
    assert cumulative > already, "nothing owed"
    amount: uint256 = cumulative - already
    assert amount <= job.remaining, "over budget"
    self.paid[job_id][payee] = cumulative
    log Redeemed(job_id=job_id, payee=payee, amount=amount, cumulative=cumulative)
    return amount


@internal
def _pay(token: address, to: address, amount: uint256):
    if token == empty(address):
        raw_call(to, b"", value=amount)
    else:
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "transfer failed"


@internal
def _credit(account: address, amount: uint256):
    if amount > 0:
        self.credit[account] += amount
        log Credited(account=account, amount=amount)


@internal
def _take_stake(worker: address, amount_max: uint256) -> uint256:
    # Active stake first, then the unbonding bucket.
    st: Stake = self.stakes[worker]
    from_active: uint256 = min(amount_max, st.active)
    from_unbonding: uint256 = min(amount_max - from_active, st.unbonding)
    st.active -= from_active
    st.unbonding -= from_unbonding
    self.stakes[worker] = st
    return from_active + from_unbonding


@view
@internal
def _fraud_signers(job_id: bytes32, worker: address, requester: address, amount: uint256, sigs: DynArray[Sig, MAX_SIGNERS]) -> DynArray[address, MAX_SIGNERS]:
    digest: bytes32 = self._digest(keccak256(abi_encode(FRAUD_TYPEHASH, job_id, worker, amount)))
    signers: DynArray[address, MAX_SIGNERS] = []
    last: uint256 = 0
    for sig: Sig in sigs:
        signer: address = self._recover(digest, sig)
        # Strictly ascending addresses: distinct signers without a nested loop.
        assert convert(signer, uint256) > last, "signers not ascending"
        last = convert(signer, uint256)
        assert signer != worker, "worker cannot sign"
        # The requester receives half of the slash, so it cannot vouch for one.
        assert signer != requester, "requester cannot sign"
        assert self.is_checker[signer], "not a checker"
        assert self.stakes[signer].active >= CHECKER_MIN_STAKE, "checker stake too low"
        signers.append(signer)
    return signers
