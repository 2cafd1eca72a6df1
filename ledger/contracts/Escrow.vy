# pragma version 0.4.3
# @title Pictor Escrow
# @notice Per-job escrow with per-payee lanes paid out by cumulative EIP-712
#         vouchers, worker and checker stake with an unbonding delay, and
#         slashing by a checker quorum.
# @dev Theory of operation
#   Jobs. A job is keyed by (requester, job_id): `key = keccak256(abi_encode(
#   requester, job_id))`, so nobody can squat another requester's id. The
#   requester deposits a budget in native coin or in one ERC-20 token, with a
#   deadline; top-ups add to the budget and may only push the deadline later,
#   and only while the job's vouchers pay (so the claim window below never
#   reopens). No deadline lies more than MAX_JOB_S after the job's first
#   deposit (its minute, kept with the job), top-ups included, so the claim
#   window of any result ends by then plus GRACE_S: what a signer watches is
#   bounded in time.
#   Token deposits credit the balance the escrow actually received, so a
#   fee-on-transfer token cannot make other jobs insolvent.
#   Lanes. The deposit is unallocated until the requester carves lanes out of
#   it: `open_lanes` moves funds into the lane of (job, payee), several payees
#   per transaction. A lane only grows, and nothing but that payee's vouchers
#   can spend it before deadline + GRACE_S, so a worker that sees its lane on
#   chain knows that much pay is secured: the requester cannot claw it back
#   (a voucher to itself or a sock puppet spends only that payee's own lane) and
#   cannot promise more than it deposited (lanes sum to at most the deposit).
#   Vouchers. For each payee the requester signs
#   Voucher(requester, jobId, payee, cumulative): the total it owes that payee
#   for the job so far. The contract pays `min(cumulative, lane) - paid`, so a
#   newer voucher supersedes older ones, replay pays nothing, a voucher beyond
#   the lane pays what is secured now and the rest after a top-up, and one
#   redeem per payee per job settles any number of frames. `redeem` reverts
#   with the reason; `redeem_batch` skips (and logs) entries that cannot pay,
#   including payees whose payment fails, so one stale entry cannot sink the
#   batch.
#   Time. Vouchers redeem while block.timestamp <= deadline + GRACE_S. Only after
#   that (strictly later) can anyone refund the remainder (unallocated funds and
#   unpaid lane balances) to the requester; the refund closes the job and no
#   voucher pays afterwards.
#   Open lanes. A new lane (one with funds, for a payee with none in that job)
#   is counted for its payee by the UTC day its job's claim window ends
#   (deadline + GRACE_S, the deadline as it stands then); `open_lanes_of`
#   sums the days from today on: how many jobs one payee's stake backs at
#   once, so that a requester can ask `min stake x (lanes elsewhere + 1)`
#   (docs/LEDGER.md, "One stake, many jobs"). Anyone who opens a lane adds
#   to the count (a job and a funded lane each): nothing else can.
#   Stake. Native coin only. `request_unbond` moves free stake (active minus
#   what pending claims lock) into an unbonding bucket withdrawable UNBONDING_S
#   later; unbonding stake stays slashable, so a cheat cannot escape a fraud
#   proof by unbonding first; a claim the accused wins returns what it took
#   from that bucket to the bucket, its unbond_at unchanged. A checker whose
#   active stake drops under CHECKER_MIN_STAKE loses its checker flag (the
#   return does not restore it: register_checker again).
#   Slashing is two-phase and per frame. `claim_fraud` needs (a) the worker's
#   own EIP-712 signature over Result(requester, jobId, taskId, frame,
#   frameDigest), so only a worker that delivered that result can be accused,
#   and (b) SLASH_QUORUM distinct registered checkers (neither the worker nor
#   the requester) signing Fraud(requester, jobId, worker, taskId, frame,
#   frameDigest, tiles, amount, round), `tiles` committing to the tiles they
#   re-rendered, `round` the size of the answer that ended the frame's last
#   claim (0 for its first: a claim's signatures open no later one). The amount is SLASH_CAP, no less; up to it is taken from the
#   worker's stake into the claim at once (nothing held is no refusal: other
#   claims may hold the stake now; the claim takes the rest when it executes,
#   and stays owed while short: below), and each signer must hold that much
#   free stake and one SLASH_CAP more (so a claim on a signer always finds a cap
#   to take, whatever claims it signed); the amount is locked until the claim
#   settles. During CHALLENGE_S
#   the worker may answer with signatures of MORE distinct registered
#   checkers than signed the claim, none of them a claimer, the worker or the
#   requester, each holding `amount` and a SLASH_CAP more free and locking
#   `amount` (`escalate` with an empty
#   ladder): the first rung of the claim's ladder. Each further rung
#   (`escalate`) outnumbers the last within ITS window (CHALLENGE_S,
#   restarted by every rung), alternating sides: even rungs (the answer
#   first) for the accused, odd ones for the claim, by registered checkers
#   never on the other side (claimers are the claim's), each locking
#   `amount`. A rung's signers sign Rung(claimId, commit, rung): that very
#   claim (`commit` names its frame digest, tiles and claimers, so a later
#   claim on the frame is another) and that rung, whose parity is the side;
#   a signature counts once, where its signer put it. Sizes grow
#   strictly and stop at MAX_SIGNERS, so a ladder has at most MAX_RUNGS rungs.
#   After the last rung's window anyone settles (`settle_contest`): the side
#   of the last rung wins, every position (a signer on a rung) of the losing
#   side forfeits its `amount`, half of the forfeits burned, and the
#   winners' locks are released. The
#   claim's side: the claim executes: half of the taken stake is burned (it
#   stays in the escrow, nobody's: a cheat's friends that claim its stake
#   first recover only half), a quarter goes to the requester and a quarter
#   plus the paid half of the forfeits in equal parts to its positions.
#   The accused's side: the claim is cancelled, the worker gets its stake
#   back (each part where it was taken from) plus a quarter of the
#   forfeits, a quarter to its positions. So every
#   rung risks its signers' stake, and the side that can bring more staked
#   checkers (16 at most) has the last word (docs/LEDGER.md). Otherwise,
#   after the claim's window, anyone executes it: half of the taken stake
#   burned, a quarter to the requester, a quarter in equal parts to the
#   claimers, whose locks are
#   released. An upheld claim takes, when it executes, what the accused holds
#   then (free active, then unbonding) up to its amount besides what it held;
#   one that took less stays owed for DEBT_S after its window: execute_slash
#   again, by anyone, collects
#   what the accused holds at that time, split the same way (no lock released,
#   no forfeit: the positions were settled the first time; a contested claim's
#   later collections pay its requester and claimers only). So stake that
#   other claims held when it opened (the accused's friends' claims on junk it
#   signed, answered by more friends) or that the accused locked behind claims
#   it signed, when it comes back, pays the claims it owes. One claim per (job, worker, task, frame) at a time, settled
#   once (an owed one then collected again); after an answer stood the frame may be claimed again, by more
#   signers than its last rung had
#   (so the accused's friends cannot use the frame up by claiming and answering
#   it themselves, nor by a cheap claim: the amount is always the cap). At most
#   MAX_SIGNERS - 1 claimers, so every claim can be answered. A claim opens only
#   while the job's vouchers pay (block.timestamp <= deadline + GRACE_S, the
#   deadline as top-ups last pushed it): the accused watches each result it
#   signed until then, plus CHALLENGE_S, and a contested claim until it is
#   settled (and one window after a contest its side won: the frame may be claimed
#   again until then), and no longer (an unbounded window
#   let a requester claim an old result once the accused's watch had lapsed).
#   Checkers are claimable too. `claim_pass` accuses a checker of a wrong
#   pass: in place of the worker's Result it needs the checker's own signature
#   over Pass(requester, jobId, checker, taskId, frame, frameDigest, tiles),
#   `tiles` committing to the tiles the checker re-rendered and the digests it
#   committed, and the claimers sign Fraud with worker := the checker and the
#   SAME `tiles`: they attest that the frame is wrong where the checker looked,
#   so a checker whose tiles matched cannot be slashed for a fake elsewhere in
#   the frame. From then on it is the worker's claim with the checker as the
#   accused (`worker` in the event, answer_claim and execute_slash); claim ids
#   are (job, accused, task, frame), so a node that both delivered and passed a
#   frame answers for it once. Signatures are ordered by ascending signer
#   address, which proves distinctness without a loop; payouts are credited
#   to pull-payment balances (`withdraw_credit`), so one reverting recipient
#   cannot block a settlement.
#   Storage. A job is two slots: `job_meta` packs requester (bits 0-159),
#   deadline (160-223), refunded (224), "pays in a token" (225) and the minute
#   of its first deposit (226-255, unix seconds // 60); `job_funds`
#   packs remaining (0-127: deposited, not yet paid or refunded) and unallocated
#   (128-255: the part of remaining in no lane). A lane is one slot: total
#   allotted (0-127) and paid (128-255). Amounts are capped at 2**128 - 1. The
#   token address gets a slot only for token jobs.
#   Payments use raw_call with value (never `send`, whose 2,300-gas stipend
#   breaks contract wallets); every external state change is nonreentrant and
#   updates storage before it transfers.

from ethereum.ercs import IERC20

struct Job:
    requester: address  # empty(address): no such job
    token: address  # empty(address) = native coin
    remaining: uint256  # deposited, not yet paid out or refunded (lanes included)
    unallocated: uint256  # the part of `remaining` in no lane
    deadline: uint256  # unix seconds
    refunded: bool

struct Lane:
    total: uint256  # allotted to the payee so far
    paid: uint256  # paid to the payee so far (<= total)

struct Secured:
    # What a payee checks before it bids and before each frame, in one call.
    exists: bool
    token: address
    deadline: uint256
    redeem_until: uint256  # deadline + GRACE_S: the last block time a voucher pays
    refunded: bool
    lane: uint256
    paid: uint256

struct LaneFunding:
    payee: address
    amount: uint256

struct Stake:
    active: uint256
    unbonding: uint256
    unbond_at: uint256  # unix seconds when `unbonding` becomes withdrawable
    locked: uint256  # the part of `active` backing pending fraud claims (<= active)

struct ResultRef:
    # Which delivered result a claim is about; the worker signed exactly this.
    requester: address
    job_id: bytes32
    task_id: bytes32
    frame: uint256
    frame_digest: bytes32  # sha256 of the frame file the worker delivered

struct Claim:
    taken: uint256  # stake the claim has taken so far (held while pending, collected after)
    from_unbonding: uint256  # the part of `taken` from the worker's unbonding bucket
    amount: uint256  # stake each claimer has locked
    settle_at: uint256  # executable from then on; answerable strictly before
    commit: bytes32  # keccak256(abi_encode(frame_digest, tiles, claimers))
    status: uint256  # CLAIM_* code
    answered_by: uint256  # signers of the last rung: a new claim needs more than an answer's
    answer: bytes32  # keccak256(abi_encode(ladder)): every rung's signers since the claim
    rungs: uint256  # rungs on the ladder (0: unanswered)

struct Sig:
    v: uint8
    r: bytes32
    s: bytes32

struct Voucher:
    requester: address
    job_id: bytes32
    payee: address
    cumulative: uint256
    sig: Sig

event Deposited:
    job_id: indexed(bytes32)
    requester: indexed(address)
    token: address
    amount: uint256  # what the escrow received
    deadline: uint256

event LaneFunded:
    job_id: indexed(bytes32)
    requester: indexed(address)
    payee: indexed(address)
    amount: uint256
    lane: uint256  # the lane's total after this funding

event Redeemed:
    job_id: indexed(bytes32)
    requester: indexed(address)
    payee: indexed(address)
    amount: uint256
    cumulative: uint256  # total paid to the payee for this job so far

event RedeemSkipped:
    job_id: indexed(bytes32)
    requester: indexed(address)
    payee: indexed(address)
    reason: uint256  # one of the SKIP_* codes

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

event CheckerDeregistered:
    checker: indexed(address)

event FraudClaimed:
    claim_id: indexed(bytes32)
    job_id: indexed(bytes32)
    worker: indexed(address)
    requester: address
    frame: uint256
    amount: uint256  # worker stake taken into the claim
    settle_at: uint256
    # What an answer must name (answer_claim): the worker reads them here.
    tiles: bytes32
    claimers: DynArray[address, MAX_SIGNERS]

event ClaimContested:
    claim_id: indexed(bytes32)
    worker: indexed(address)
    # its index on the claim's ladder: even (0 the first answer) the accused's side, odd
    # the claim's
    rung: uint256
    settle_at: uint256  # the last rung wins from then on unless outnumbered before
    # What the next rung or the settlement must name: every rung's signers, read here.
    signers: DynArray[address, MAX_SIGNERS]

event Slashed:
    claim_id: indexed(bytes32)
    job_id: indexed(bytes32)
    worker: indexed(address)
    requester: address
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
CREATED_SHIFT: constant(uint256) = 226
CREATED_MAX: constant(uint256) = (1 << 30) - 1  # minutes: until the year 4011
DEADLINE_MAX: constant(uint256) = (1 << 64) - 1
AMOUNT_MAX: constant(uint256) = (1 << 128) - 1
MAX_SIGNERS: constant(uint256) = 16
LANE_EPOCH_S: constant(uint256) = 86400  # open lanes are counted by the day their claim window ends
LANE_EPOCHS: constant(uint256) = 64  # days counted ahead: bounds MAX_JOB_S + GRACE_S
MAX_RUNGS: constant(uint256) = MAX_SIGNERS - 1  # rungs grow strictly, from 2 signers to 16
DEBT_S: constant(uint256) = 90 * 86400  # how long an executed claim short of its amount is owed
# Gas forwarded with each payment in a batch: ample for contract wallets, and a
# payee that burns gas cannot starve the rest of the batch.
BATCH_PAY_GAS: constant(uint256) = 100000
# secp256k1n / 2: larger s values are the malleable twin of a valid signature.
SECP256K1_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

# Why a batch entry paid nothing (RedeemSkipped.reason).
SKIP_NO_JOB: constant(uint256) = 1
SKIP_REFUNDED: constant(uint256) = 2
SKIP_EXPIRED: constant(uint256) = 3
SKIP_BAD_SIGNATURE: constant(uint256) = 4
SKIP_NOTHING_OWED: constant(uint256) = 5  # cumulative <= paid
SKIP_LANE_SPENT: constant(uint256) = 6  # owed, but the lane holds nothing more
SKIP_PAYMENT_FAILED: constant(uint256) = 7  # the payee (or token) refused the transfer

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
VOUCHER_TYPEHASH: constant(bytes32) = keccak256(
    "Voucher(address requester,bytes32 jobId,address payee,uint256 cumulative)"
)
RESULT_TYPEHASH: constant(bytes32) = keccak256(
    "Result(address requester,bytes32 jobId,bytes32 taskId,uint256 frame,bytes32 frameDigest)"
)
FRAUD_TYPEHASH: constant(bytes32) = keccak256(
    "Fraud(address requester,bytes32 jobId,address worker,bytes32 taskId,uint256 frame,bytes32 frameDigest,bytes32 tiles,uint256 amount,uint256 round)"
)
RUNG_TYPEHASH: constant(bytes32) = keccak256("Rung(bytes32 claimId,bytes32 commit,uint256 rung)")
PASS_TYPEHASH: constant(bytes32) = keccak256(
    "Pass(address requester,bytes32 jobId,address checker,bytes32 taskId,uint256 frame,bytes32 frameDigest,bytes32 tiles)"
)
CLAIM_PENDING: constant(uint256) = 1
CLAIM_EXECUTED: constant(uint256) = 2
CLAIM_ANSWERED: constant(uint256) = 3  # the answer stood: cancelled
CLAIM_CONTESTED: constant(uint256) = 4  # answered: a ladder of rungs, settled after settle_at

GRACE_S: public(immutable(uint256))
UNBONDING_S: public(immutable(uint256))
SLASH_QUORUM: public(immutable(uint256))
CHECKER_MIN_STAKE: public(immutable(uint256))
SLASH_CAP: public(immutable(uint256))
CHALLENGE_S: public(immutable(uint256))
MAX_JOB_S: public(immutable(uint256))
DOMAIN_SEPARATOR: public(immutable(bytes32))

# Per-job state is keyed by job_key(requester, job_id).
job_meta: HashMap[bytes32, uint256]
job_funds: HashMap[bytes32, uint256]
job_token: HashMap[bytes32, address]
lane_of: HashMap[bytes32, HashMap[address, uint256]]
# payee -> day (unix s // LANE_EPOCH_S) -> lanes opened for it in jobs whose claim
# window (deadline + GRACE_S, as the deadline stood then) ends that day
lanes_ending: HashMap[address, HashMap[uint256, uint256]]
stakes: public(HashMap[address, Stake])
is_checker: public(HashMap[address, bool])
claims: public(HashMap[bytes32, Claim])
credit: public(HashMap[address, uint256])


@deploy
def __init__(
    grace_s: uint256,
    unbonding_s: uint256,
    slash_quorum: uint256,
    checker_min_stake: uint256,
    slash_cap: uint256,
    challenge_s: uint256,
    max_job_s: uint256,
):
    # The quorum stays below MAX_SIGNERS so that a larger quorum can answer a claim.
    assert slash_quorum > 0 and slash_quorum < MAX_SIGNERS, "bad quorum"
    assert checker_min_stake > 0, "checkers must stake"
    assert slash_cap > 0 and slash_cap <= AMOUNT_MAX, "bad slash cap"
    assert challenge_s > 0 and challenge_s <= DEADLINE_MAX, "bad challenge window"
    assert grace_s <= DEADLINE_MAX, "grace too long"
    assert max_job_s > 0 and max_job_s <= DEADLINE_MAX, "bad job length"
    assert (max_job_s + grace_s) // LANE_EPOCH_S + 2 <= LANE_EPOCHS, "job too long to count"
    MAX_JOB_S = max_job_s
    SLASH_CAP = slash_cap
    CHALLENGE_S = challenge_s
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
    @notice Open or top up the escrow of (msg.sender, job_id). Native coin:
            token is empty(address) and amount must equal msg.value. ERC-20:
            msg.value is 0 and `amount` is pulled with transferFrom (approve
            first); the job is credited what the escrow actually received.
    """
    assert amount > 0, "zero deposit"
    assert deadline > block.timestamp, "deadline passed"
    assert deadline <= DEADLINE_MAX, "deadline too far"
    key: bytes32 = self._key(msg.sender, job_id)
    job: Job = self._load(key)
    # Read here only (every other path leaves these bits alone or ends the job): the
    # minute of the job's first deposit, from which MAX_JOB_S counts.
    created: uint256 = self._created(key)
    if job.requester == empty(address):
        job = Job(requester=msg.sender, token=token, remaining=0, unallocated=0, deadline=deadline, refunded=False)
        created = block.timestamp // 60 * 60
        if token != empty(address):
            self.job_token[key] = token
    else:
        assert job.token == token, "token mismatch"
        assert not job.refunded, "refunded"
        assert deadline >= job.deadline, "deadline earlier"
        # Only while its vouchers pay: a top-up after that would reopen the claim
        # window of results whose signers stopped watching them.
        assert block.timestamp <= job.deadline + GRACE_S, "job expired"
    assert deadline <= created + MAX_JOB_S, "deadline too far"
    job.deadline = deadline
    received: uint256 = amount
    if token == empty(address):
        assert msg.value == amount, "value != amount"
    else:
        assert msg.value == 0, "value with token"
        before: uint256 = staticcall IERC20(token).balanceOf(self)
        assert extcall IERC20(token).transferFrom(msg.sender, self, amount, default_return_value=True), "transferFrom failed"
        received = staticcall IERC20(token).balanceOf(self) - before
        assert received > 0, "nothing received"
    job.remaining += received
    job.unallocated += received
    assert job.remaining <= AMOUNT_MAX, "amount too large"
    self.job_meta[key] = self._pack(job) | (created // 60 << CREATED_SHIFT)
    self.job_funds[key] = job.remaining | (job.unallocated << 128)
    log Deposited(job_id=job_id, requester=msg.sender, token=token, amount=received, deadline=deadline)


@external
@nonreentrant
def open_lanes(job_id: bytes32, fundings: DynArray[LaneFunding, MAX_BATCH]):
    """
    @notice Move unallocated budget of (msg.sender, job_id) into payees'
            lanes: open a lane or top it up. A lane only grows; only the
            payee's vouchers spend it until deadline + GRACE_S.
    """
    key: bytes32 = self._key(msg.sender, job_id)
    job: Job = self._open_job(key)
    assert block.timestamp <= job.deadline + GRACE_S, "job expired"
    for f: LaneFunding in fundings:
        assert f.payee != empty(address), "zero payee"
        assert f.amount <= job.unallocated, "over budget"
        job.unallocated -= f.amount
        packed: uint256 = self.lane_of[key][f.payee]
        if packed & AMOUNT_MAX == 0 and f.amount > 0:  # a new lane: counted (open_lanes_of)
            self.lanes_ending[f.payee][(job.deadline + GRACE_S) // LANE_EPOCH_S] += 1
        total: uint256 = (packed & AMOUNT_MAX) + f.amount
        assert total <= AMOUNT_MAX, "amount too large"  # the paid half must stay intact
        self.lane_of[key][f.payee] = (packed & ~AMOUNT_MAX) | total
        log LaneFunded(job_id=job_id, requester=msg.sender, payee=f.payee, amount=f.amount, lane=total)
    self.job_funds[key] = job.remaining | (job.unallocated << 128)


@external
@nonreentrant
def redeem(requester: address, job_id: bytes32, payee: address, cumulative: uint256, sig: Sig):
    """
    @notice Pay `payee` what the requester's voucher owes beyond what was paid,
            up to the payee's lane. Anyone may submit; the money always goes
            to `payee`. Reverts with the reason when nothing can be paid.
    """
    key: bytes32 = self._key(requester, job_id)
    job: Job = self._load(key)
    code: uint256 = self._check(key, job, requester, job_id, payee, cumulative, sig)
    assert code != SKIP_NO_JOB, "no such job"
    assert code != SKIP_REFUNDED, "refunded"
    assert code != SKIP_EXPIRED, "voucher expired"
    assert code != SKIP_BAD_SIGNATURE, "bad signature"
    packed: uint256 = self.lane_of[key][payee]
    amount: uint256 = self._due(packed, cumulative)
    assert cumulative > packed >> 128, "nothing owed"
    assert amount > 0, "lane spent"
    paid: uint256 = (packed >> 128) + amount
    self.lane_of[key][payee] = (packed & AMOUNT_MAX) | (paid << 128)
    self.job_funds[key] = (job.remaining - amount) | (job.unallocated << 128)
    self._pay(job.token, payee, amount)
    log Redeemed(job_id=job_id, requester=requester, payee=payee, amount=amount, cumulative=paid)


@external
@nonreentrant
def redeem_batch(vouchers: DynArray[Voucher, MAX_BATCH]) -> uint256:
    """
    @notice Redeem many vouchers in one transaction (any jobs, any payees).
            An entry that cannot pay (stale, forged, expired, lane spent, or a
            payee that refuses the payment) is skipped and logged with
            RedeemSkipped; the others pay. Returns the number of entries paid.
    """
    count: uint256 = 0
    for v: Voucher in vouchers:
        key: bytes32 = self._key(v.requester, v.job_id)
        job: Job = self._load(key)
        code: uint256 = self._check(key, job, v.requester, v.job_id, v.payee, v.cumulative, v.sig)
        packed: uint256 = 0
        amount: uint256 = 0
        if code == 0:
            packed = self.lane_of[key][v.payee]
            amount = self._due(packed, v.cumulative)
            if v.cumulative <= packed >> 128:
                code = SKIP_NOTHING_OWED
            elif amount == 0:
                code = SKIP_LANE_SPENT
        if code == 0:
            paid: uint256 = (packed >> 128) + amount
            self.lane_of[key][v.payee] = (packed & AMOUNT_MAX) | (paid << 128)
            self.job_funds[key] = (job.remaining - amount) | (job.unallocated << 128)
            if self._try_pay(job.token, v.payee, amount):
                log Redeemed(job_id=v.job_id, requester=v.requester, payee=v.payee, amount=amount, cumulative=paid)
                count += 1
                continue
            # Undo: nothing was paid (reentry is impossible, the lock is held).
            self.lane_of[key][v.payee] = packed
            self.job_funds[key] = job.remaining | (job.unallocated << 128)
            code = SKIP_PAYMENT_FAILED
        log RedeemSkipped(job_id=v.job_id, requester=v.requester, payee=v.payee, reason=code)
    return count


@external
@nonreentrant
def refund(requester: address, job_id: bytes32):
    """
    @notice After deadline + grace, return the remainder (unallocated funds
            and unpaid lane balances) to the requester and close the job.
            Anyone may call; the money goes to the requester.
    """
    key: bytes32 = self._key(requester, job_id)
    job: Job = self._open_job(key)
    assert block.timestamp > job.deadline + GRACE_S, "grace not over"
    job.refunded = True
    self.job_meta[key] = self._pack(job)  # its first deposit's minute goes: no top-up follows
    self.job_funds[key] = 0
    if job.remaining > 0:
        self._pay(job.token, job.requester, job.remaining)
    log Refunded(job_id=job_id, requester=job.requester, amount=job.remaining)


@view
@external
def jobs(requester: address, job_id: bytes32) -> Job:
    return self._load(self._key(requester, job_id))


@view
@external
def job_created(requester: address, job_id: bytes32) -> uint256:
    """
    @notice The first deposit's time (unix seconds, rounded down to the minute; 0 once
            refunded): no deadline of the job lies more than MAX_JOB_S after it.
    """
    return self._created(self._key(requester, job_id))


@view
@external
def lanes(requester: address, job_id: bytes32, payee: address) -> Lane:
    packed: uint256 = self.lane_of[self._key(requester, job_id)][payee]
    return Lane(total=packed & AMOUNT_MAX, paid=packed >> 128)


@view
@external
def paid(requester: address, job_id: bytes32, payee: address) -> uint256:
    return self.lane_of[self._key(requester, job_id)][payee] >> 128


@view
@external
def secured(requester: address, job_id: bytes32, payee: address) -> Secured:
    key: bytes32 = self._key(requester, job_id)
    job: Job = self._load(key)
    packed: uint256 = self.lane_of[key][payee]
    return Secured(
        exists=job.requester != empty(address),
        token=job.token,
        deadline=job.deadline,
        redeem_until=job.deadline + GRACE_S,
        refunded=job.refunded,
        lane=packed & AMOUNT_MAX,
        paid=packed >> 128,
    )


@view
@external
def voucher_digest(requester: address, job_id: bytes32, payee: address, cumulative: uint256) -> bytes32:
    return self._digest(keccak256(abi_encode(VOUCHER_TYPEHASH, requester, job_id, payee, cumulative)))


@view
@external
def result_digest(ref: ResultRef) -> bytes32:
    return self._result_digest(ref)


@view
@external
def fraud_digest(ref: ResultRef, worker: address, tiles: bytes32, amount: uint256, round: uint256) -> bytes32:
    return self._fraud_digest(ref, worker, tiles, amount, round)


@view
@external
def rung_digest(claim_id: bytes32, commit: bytes32, rung: uint256) -> bytes32:
    return self._rung_digest(claim_id, commit, rung)


@view
@external
def pass_digest(ref: ResultRef, checker: address, tiles: bytes32) -> bytes32:
    return self._pass_digest(ref, checker, tiles)


@pure
@external
def claim_id(ref: ResultRef, worker: address) -> bytes32:
    return self._claim_id(ref, worker)


@view
@external
def open_lanes_of(payee: address) -> uint256:
    """
    @notice Lanes opened for `payee` in jobs whose claim window ends today or
            later (UTC days): the jobs its stake backs at once. A lane counts
            until the end of the day its window ends, by the deadline when it
            opened (a deadline pushed later afterwards is not followed).
    """
    n: uint256 = 0
    day: uint256 = block.timestamp // LANE_EPOCH_S
    for i: uint256 in range(day, day + (MAX_JOB_S + GRACE_S) // LANE_EPOCH_S + 2, bound=LANE_EPOCHS):
        n += self.lanes_ending[payee][i]
    return n


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
    @notice Start unbonding `amount` of free stake (active, not locked by a
            pending claim); withdrawable UNBONDING_S from now. A new request
            restarts the clock for the whole unbonding bucket, so stake cannot
            dodge a pending fraud proof by unbonding in slices.
    """
    st: Stake = self.stakes[msg.sender]
    assert amount > 0 and amount <= st.active - st.locked, "bad amount"
    st.active -= amount
    st.unbonding += amount
    st.unbond_at = block.timestamp + UNBONDING_S
    self.stakes[msg.sender] = st
    self._sync_checker(msg.sender)
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
def claim_fraud(
    ref: ResultRef,
    worker: address,
    worker_sig: Sig,
    tiles: bytes32,
    amount: uint256,
    sigs: DynArray[Sig, MAX_SIGNERS],
) -> bytes32:
    """
    @notice Open a fraud claim against `worker` for the result it signed:
            takes up to `amount` (= SLASH_CAP) of its stake into the claim
            (nothing held is no refusal) and locks `amount` of each signing
            checker's free stake until the claim settles. Executable
            CHALLENGE_S later unless answered.
    """
    assert worker != empty(address), "zero worker"
    assert self._recover(self._result_digest(ref), worker_sig) == worker, "not the worker's result"
    return self._open_claim(ref, worker, tiles, amount, sigs)


@external
@nonreentrant
def claim_pass(
    ref: ResultRef,
    checker: address,
    pass_sig: Sig,
    tiles: bytes32,
    amount: uint256,
    sigs: DynArray[Sig, MAX_SIGNERS],
) -> bytes32:
    """
    @notice Open a claim against `checker` for a result it passed: its own
            Pass signature over `ref` and `tiles` (its re-rendered tiles) is
            the proof it judged that frame at those tiles, and the claimers'
            Fraud signatures name the same `tiles`, so they attest a wrong
            pass where the checker looked. Otherwise a fraud claim with the
            checker as the accused: answered and executed the same way.
    """
    assert checker != empty(address), "zero checker"
    assert self._recover(self._pass_digest(ref, checker, tiles), pass_sig) == checker, "not the checker's pass"
    return self._open_claim(ref, checker, tiles, amount, sigs)


@external
@nonreentrant
def escalate(
    ref: ResultRef,
    worker: address,
    tiles: bytes32,
    claimers: DynArray[address, MAX_SIGNERS],
    ladder: DynArray[DynArray[address, MAX_SIGNERS], MAX_RUNGS],
    sigs: DynArray[Sig, MAX_SIGNERS],
):
    """
    @notice Outnumber the last rung of a claim before its window ends, each
            signer locking the claim's amount; the window starts again. With
            no `ladder` yet, the accused's answer to a pending claim: more
            registered checkers than claimed it. Even rungs are the accused's
            side, odd ones the claim's; each signer signs Rung(claim_id,
            commit, rung) for this rung, and is never on the other side (a
            claimer is on the claim's). More signers than the last rung.
    """
    self._rung(ref, worker, tiles, claimers, ladder, sigs)


@external
@nonreentrant
def settle_contest(
    ref: ResultRef,
    worker: address,
    tiles: bytes32,
    claimers: DynArray[address, MAX_SIGNERS],
    ladder: DynArray[DynArray[address, MAX_SIGNERS], MAX_RUNGS],
):
    """
    @notice After the last rung's window the side that signed it wins. The
            claim's side: the claim executes (execute_slash's split of the
            accused's stake, every position of that side paid equally, half
            of the other side's locked stake forfeited to it, half burned).
            The accused's side: the claim is cancelled, the accused's stake
            returns with a quarter of the claim side's forfeit, a quarter to
            its positions, half burned.
            Anyone may call.
    """
    claim_id: bytes32 = self._claim_id(ref, worker)
    claim: Claim = self.claims[claim_id]
    assert claim.status == CLAIM_CONTESTED, "no contested claim"
    assert block.timestamp >= claim.settle_at, "challenge window open"
    assert self._commit(ref.frame_digest, tiles, claimers) == claim.commit, "wrong claim"
    assert keccak256(abi_encode(ladder)) == claim.answer, "wrong ladder"
    self._settle(claim_id, claim, ref, worker, claimers, ladder)


@external
@nonreentrant
def execute_slash(ref: ResultRef, worker: address, tiles: bytes32, claimers: DynArray[address, MAX_SIGNERS]):
    """
    @notice After the challenge window of a claim nobody answered, slash:
            the stake the claim holds and what the accused holds now, up to
            the amount; half of it burned, a quarter to the job's requester, a
            quarter in equal parts to the claimers, whose locks are released.
            Again on an executed claim that took less than its amount: what
            the accused holds now, up to the rest, split the same way.
            Anyone may call.
    """
    claim_id: bytes32 = self._claim_id(ref, worker)
    claim: Claim = self.claims[claim_id]
    # an executed claim short of its amount is owed for DEBT_S after its window
    assert claim.status == CLAIM_PENDING or (
        claim.status == CLAIM_EXECUTED and block.timestamp <= claim.settle_at + DEBT_S
    ), "no pending claim"
    assert block.timestamp >= claim.settle_at, "challenge window open"
    assert self._commit(ref.frame_digest, tiles, claimers) == claim.commit, "wrong claim"
    self._settle(claim_id, claim, ref, worker, claimers, [])


@external
@nonreentrant
def withdraw_credit():
    owed: uint256 = self.credit[msg.sender]
    assert owed > 0, "no credit"
    self.credit[msg.sender] = 0
    raw_call(msg.sender, b"", value=owed)
    log CreditWithdrawn(account=msg.sender, amount=owed)


# ---------------------------------------------------------------- internals

@pure
@internal
def _key(requester: address, job_id: bytes32) -> bytes32:
    return keccak256(abi_encode(requester, job_id))


@view
@internal
def _load(key: bytes32) -> Job:
    meta: uint256 = self.job_meta[key]
    funds: uint256 = self.job_funds[key]
    token: address = empty(address)
    if meta & TOKEN_BIT != 0:
        token = self.job_token[key]
    return Job(
        requester=convert(convert(meta & convert(max_value(uint160), uint256), uint160), address),
        token=token,
        remaining=funds & AMOUNT_MAX,
        unallocated=funds >> 128,
        deadline=(meta >> 160) & DEADLINE_MAX,
        refunded=meta & REFUNDED_BIT != 0,
    )


@pure
@internal
def _commit(frame_digest: bytes32, tiles: bytes32, claimers: DynArray[address, MAX_SIGNERS]) -> bytes32:
    # What a claim stores of its frame, tiles and claimers (one copy: code size).
    return keccak256(abi_encode(frame_digest, tiles, claimers))


@view
@internal
def _open_job(key: bytes32) -> Job:
    # A job that exists and was not refunded (one copy of both reasons: code size).
    job: Job = self._load(key)
    assert job.requester != empty(address), "no such job"
    assert not job.refunded, "refunded"
    return job


@view
@internal
def _created(key: bytes32) -> uint256:
    return ((self.job_meta[key] >> CREATED_SHIFT) & CREATED_MAX) * 60


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
    # empty(address) for a malleable (high-s) or unrecoverable signature.
    if convert(sig.s, uint256) > SECP256K1_HALF_N:
        return empty(address)
    return ecrecover(digest, sig.v, sig.r, sig.s)


@view
@internal
def _check(key: bytes32, job: Job, requester: address, job_id: bytes32, payee: address, cumulative: uint256, sig: Sig) -> uint256:
    # 0 when the voucher is for a live job and signed by its requester, else a SKIP_* code.
    if job.requester == empty(address):
        return SKIP_NO_JOB
    if job.refunded:
        return SKIP_REFUNDED
    if block.timestamp > job.deadline + GRACE_S:
        return SKIP_EXPIRED
    digest: bytes32 = self._digest(keccak256(abi_encode(VOUCHER_TYPEHASH, requester, job_id, payee, cumulative)))
    if self._recover(digest, sig) != requester:
        return SKIP_BAD_SIGNATURE
    return 0


@pure
@internal
def _due(packed_lane: uint256, cumulative: uint256) -> uint256:
    # What a voucher for `cumulative` pays now: up to the lane, beyond what was paid.
    payable_total: uint256 = min(cumulative, packed_lane & AMOUNT_MAX)
    already: uint256 = packed_lane >> 128
    if payable_total <= already:
        return 0
    return payable_total - already


@internal
def _pay(token: address, to: address, amount: uint256):
    if token == empty(address):
        raw_call(to, b"", value=amount)
    else:
        assert extcall IERC20(token).transfer(to, amount, default_return_value=True), "transfer failed"


@internal
def _try_pay(token: address, to: address, amount: uint256) -> bool:
    # Like _pay, but reports a refused payment instead of reverting.
    if token == empty(address):
        return raw_call(to, b"", value=amount, gas=BATCH_PAY_GAS, revert_on_failure=False)
    ok: bool = False
    response: Bytes[32] = b""
    ok, response = raw_call(
        token,
        abi_encode(to, amount, method_id=method_id("transfer(address,uint256)")),
        max_outsize=32,
        gas=BATCH_PAY_GAS,
        revert_on_failure=False,
    )
    if not ok:
        return False
    if len(response) == 0:
        return True  # tokens that return nothing (the token was a contract at deposit)
    return len(response) == 32 and extract32(response, 0, output_type=uint256) == 1


@internal
def _credit(account: address, amount: uint256):
    if amount > 0:
        self.credit[account] += amount
        log Credited(account=account, amount=amount)


@internal
def _rung(
    ref: ResultRef,
    worker: address,
    tiles: bytes32,
    claimers: DynArray[address, MAX_SIGNERS],
    ladder: DynArray[DynArray[address, MAX_SIGNERS], MAX_RUNGS],
    sigs: DynArray[Sig, MAX_SIGNERS],
):
    claim_id: bytes32 = self._claim_id(ref, worker)
    claim: Claim = self.claims[claim_id]
    n: uint256 = len(ladder)
    last: uint256 = len(claimers)
    if n == 0:
        assert claim.status == CLAIM_PENDING, "no pending claim"
    else:
        assert claim.status == CLAIM_CONTESTED, "no contested claim"
        assert keccak256(abi_encode(ladder)) == claim.answer, "wrong ladder"
        last = len(ladder[n - 1])
    assert block.timestamp < claim.settle_at, "challenge window over"
    assert self._commit(ref.frame_digest, tiles, claimers) == claim.commit, "wrong claim"
    assert len(sigs) > last, "quorum not larger"
    fraud: bool = n % 2 == 1  # odd rungs are the claim's side
    # signed for this claim and this rung: a signature is never counted where its signer
    # did not put it (another rung, a later claim on the frame)
    digest: bytes32 = self._rung_digest(claim_id, claim.commit, n)
    signers: DynArray[address, MAX_SIGNERS] = self._signers(digest, sigs, ref.requester, worker, claim.amount)
    for s: address in signers:
        assert not self._on_side(s, not fraud, claimers, ladder), "signed for the other side"
        self.stakes[s].locked += claim.amount
    grown: DynArray[DynArray[address, MAX_SIGNERS], MAX_RUNGS] = ladder
    grown.append(signers)
    claim.status = CLAIM_CONTESTED
    claim.settle_at = block.timestamp + CHALLENGE_S
    claim.answered_by = len(signers)
    claim.answer = keccak256(abi_encode(grown))
    claim.rungs = n + 1
    self.claims[claim_id] = claim
    log ClaimContested(claim_id=claim_id, worker=worker, rung=n, settle_at=claim.settle_at, signers=signers)


@pure
@internal
def _on_side(
    account: address,
    fraud: bool,
    claimers: DynArray[address, MAX_SIGNERS],
    ladder: DynArray[DynArray[address, MAX_SIGNERS], MAX_RUNGS],
) -> bool:
    # Whether `account` signed for the claim's side (`fraud`) or the accused's.
    if fraud and account in claimers:
        return True
    for i: uint256 in range(len(ladder), bound=MAX_RUNGS):
        if (i % 2 == 1) == fraud and account in ladder[i]:
            return True
    return False


@internal
def _settle(
    claim_id: bytes32,
    claim: Claim,
    ref: ResultRef,
    worker: address,
    claimers: DynArray[address, MAX_SIGNERS],
    ladder: DynArray[DynArray[address, MAX_SIGNERS], MAX_RUNGS],
):
    # The side of the last rung (the claim's when there is none) wins: each position (a
    # signer on one rung; the claimers are the claim side's first) releases its lock, and
    # the loser's positions forfeit theirs to the winner.
    upheld: bool = len(ladder) % 2 == 0
    n_fraud: uint256 = len(claimers)
    n_clean: uint256 = 0
    for i: uint256 in range(len(ladder), bound=MAX_RUNGS):
        if i % 2 == 1:
            n_fraud += len(ladder[i])
        else:
            n_clean += len(ladder[i])
    if upheld:
        # The claim takes, besides what it holds, what the accused holds now, up to the
        # amount; short of it, it stays owed: execute_slash collects again whenever the
        # accused holds stake (positions were settled the first time: no lock, no
        # forfeit). Other claims may hold the stake when it opens (the accused's friends'
        # on junk it signed) and give it back, or the accused's own claimer positions
        # (tests/ledger/test_stake_shields.py).
        lock: uint256 = claim.amount
        held: uint256 = claim.taken
        if claim.status == CLAIM_EXECUTED:
            lock = 0
            held = 0
        st: Stake = self.stakes[worker]
        more: uint256 = min(claim.amount - claim.taken, st.active - st.locked)
        later: uint256 = min(claim.amount - claim.taken - more, st.unbonding)
        st.active -= more
        st.unbonding -= later
        self.stakes[worker] = st
        self._sync_checker(worker)
        taken: uint256 = held + more + later
        self.claims[claim_id].status = CLAIM_EXECUTED
        self.claims[claim_id].taken = claim.taken + more + later
        # Half of the taken stake is burned (it stays here, nobody's): a cheat whose
        # friends claim its stake first, as requester and claimers, pays that half
        # (tests/ledger/test_stake_shields.py). The other half: a half to the requester,
        # a half to the claimers in equal parts (protocol.slashing.slash_split).
        kept: uint256 = taken - taken // 2
        # (forfeits: half burned too, so losing positions on purpose moves no stake whole)
        penalty: uint256 = lock * n_clean // 2
        share: uint256 = (kept // 2 + penalty) // n_fraud
        self._release(lock, share, False, claimers, ladder, True)
        self._release(lock, 0, True, [], ladder, False)
        self._credit(ref.requester, kept + penalty - share * n_fraud)
        log Slashed(claim_id=claim_id, job_id=ref.job_id, worker=worker, requester=ref.requester, amount=taken)
    else:
        self.claims[claim_id].status = CLAIM_ANSWERED
        # Each part back where it was taken from, unbond_at untouched: a false claim must
        # not restart an honest worker's unbonding (review L4 of issue 17).
        self.stakes[worker].active += claim.taken - claim.from_unbonding
        if claim.from_unbonding > 0:  # (mostly not: 2,200 gas saved on the bucket's slot)
            self.stakes[worker].unbonding += claim.from_unbonding
        # Half of the forfeits burned: a cheat that is a checker too lost its claimer
        # positions on purpose (claims on its sybils, answered by friends) and moved its
        # locked stake to the coalition whole (review of stop 45)
        penalty: uint256 = claim.amount * n_fraud // 2
        share: uint256 = penalty // 2 // n_clean
        self._release(claim.amount, 0, True, claimers, ladder, True)
        self._release(claim.amount, share, False, [], ladder, False)
        self._credit(worker, penalty - share * n_clean)


@internal
def _release(
    amount: uint256,
    share: uint256,
    lose: bool,
    first: DynArray[address, MAX_SIGNERS],
    ladder: DynArray[DynArray[address, MAX_SIGNERS], MAX_RUNGS],
    fraud: bool,
):
    # Every position of one side: `first` (the claimers), then its rungs of the ladder.
    for a: address in first:
        self._position(a, amount, share, lose)
    for i: uint256 in range(len(ladder), bound=MAX_RUNGS):
        if (i % 2 == 1) == fraud:
            for a: address in ladder[i]:
                self._position(a, amount, share, lose)


@internal
def _position(account: address, amount: uint256, share: uint256, lose: bool):
    # (field by field: a whole Stake would read and write its four slots)
    self.stakes[account].locked -= amount
    if lose:
        self.stakes[account].active -= amount
        self._sync_checker(account)
    self._credit(account, share)


@internal
def _open_claim(
    ref: ResultRef,
    worker: address,
    tiles: bytes32,
    amount: uint256,
    sigs: DynArray[Sig, MAX_SIGNERS],
) -> bytes32:
    # Both claims, once the accused's involvement is proven: `worker` is the
    # accused (the worker of claim_fraud, the checker of claim_pass).
    job: Job = self._load(self._key(ref.requester, ref.job_id))
    assert job.requester != empty(address), "no such job"
    # The claim window: while the job's vouchers pay. After it nothing of the job is
    # owed, and its worker and checkers stop watching their results for claims; an
    # old result claimable forever would be one the accused no longer answers.
    claim_id: bytes32 = self._claim_id(ref, worker)
    prior: Claim = self.claims[claim_id]
    # A claim the accused's side won leaves one window more to claim the frame again: the
    # accused's friends' claim and answer could otherwise hold it past the job's window.
    reopened: bool = prior.status == CLAIM_ANSWERED and block.timestamp <= prior.settle_at + CHALLENGE_S
    assert block.timestamp <= job.deadline + GRACE_S or reopened, "claim window over"
    # The whole cap: the first claim decides what the frame costs, and one for 1 wei by
    # the accused's friends would make it cost 1 wei.
    assert amount == SLASH_CAP, "amount is not the cap"
    assert prior.status == 0 or prior.status == CLAIM_ANSWERED, "already claimed"
    # An answered claim does not use up the frame (the accused's friends could claim
    # and answer it at no cost to them): a quorum larger than the answer's may claim again.
    assert len(sigs) > prior.answered_by, "answered by a quorum as large"
    assert len(sigs) >= SLASH_QUORUM, "below quorum"
    # A larger quorum (at most MAX_SIGNERS) must always be able to answer.
    assert len(sigs) < MAX_SIGNERS, "too many claimers"
    # signed for this round of the frame's claims: the answer that ended the last one names
    # it, so the signatures of a claim that lost never open a later one
    digest: bytes32 = self._fraud_digest(ref, worker, tiles, amount, prior.answered_by)
    claimers: DynArray[address, MAX_SIGNERS] = self._signers(digest, sigs, ref.requester, worker, amount)
    for c: address in claimers:
        self.stakes[c].locked += amount
    # The worker's stake into the claim: free active stake first, then the unbonding
    # bucket (stake locked behind the worker's own pending claims, as a checker, stays
    # with those claims). The part from the bucket is kept, so an answer that stands
    # returns it there (_settle). (Inline: a helper returning both parts cost 51 bytes.)
    st: Stake = self.stakes[worker]
    from_active: uint256 = min(amount, st.active - st.locked)
    from_unbonding: uint256 = min(amount - from_active, st.unbonding)
    st.active -= from_active
    st.unbonding -= from_unbonding
    self.stakes[worker] = st
    self._sync_checker(worker)
    # (nothing held is no refusal: other claims may hold the stake now; it executes with
    # what the accused holds then, _settle)
    taken: uint256 = from_active + from_unbonding
    settle_at: uint256 = block.timestamp + CHALLENGE_S
    self.claims[claim_id] = Claim(
        taken=taken,
        from_unbonding=from_unbonding,
        amount=amount,
        settle_at=settle_at,
        commit=self._commit(ref.frame_digest, tiles, claimers),
        status=CLAIM_PENDING,
        answered_by=prior.answered_by,
        answer=empty(bytes32),
        rungs=0,
    )
    log FraudClaimed(
        claim_id=claim_id,
        job_id=ref.job_id,
        worker=worker,
        requester=ref.requester,
        frame=ref.frame,
        amount=taken,
        settle_at=settle_at,
        tiles=tiles,
        claimers=claimers,
    )
    return claim_id


@internal
def _sync_checker(account: address):
    # The checker flag lasts only while the account keeps the minimum active stake.
    if self.is_checker[account] and self.stakes[account].active < CHECKER_MIN_STAKE:
        self.is_checker[account] = False
        log CheckerDeregistered(checker=account)


@pure
@internal
def _claim_id(ref: ResultRef, worker: address) -> bytes32:
    return keccak256(abi_encode(ref.requester, ref.job_id, worker, ref.task_id, ref.frame))


@view
@internal
def _result_digest(ref: ResultRef) -> bytes32:
    return self._digest(
        keccak256(abi_encode(RESULT_TYPEHASH, ref.requester, ref.job_id, ref.task_id, ref.frame, ref.frame_digest))
    )


@view
@internal
def _fraud_digest(ref: ResultRef, worker: address, tiles: bytes32, amount: uint256, round: uint256) -> bytes32:
    return self._digest(keccak256(abi_encode(
        FRAUD_TYPEHASH, ref.requester, ref.job_id, worker, ref.task_id, ref.frame, ref.frame_digest, tiles, amount,
        round,
    )))


@view
@internal
def _rung_digest(claim_id: bytes32, commit: bytes32, rung: uint256) -> bytes32:
    return self._digest(keccak256(abi_encode(RUNG_TYPEHASH, claim_id, commit, rung)))


@view
@internal
def _pass_digest(ref: ResultRef, checker: address, tiles: bytes32) -> bytes32:
    return self._digest(keccak256(abi_encode(
        PASS_TYPEHASH, ref.requester, ref.job_id, checker, ref.task_id, ref.frame, ref.frame_digest, tiles
    )))


@view
@internal
def _signers(
    digest: bytes32,
    sigs: DynArray[Sig, MAX_SIGNERS],
    requester: address,
    worker: address,
    at_risk: uint256,
) -> DynArray[address, MAX_SIGNERS]:
    # Distinct registered checkers, each with `at_risk` + SLASH_CAP free stake.
    signers: DynArray[address, MAX_SIGNERS] = []
    last: uint256 = 0
    for sig: Sig in sigs:
        # (a malleable or unrecoverable signature recovers to nobody: not ascending)
        signer: address = self._recover(digest, sig)
        # Strictly ascending addresses: distinct signers without a nested loop.
        assert convert(signer, uint256) > last, "signers not ascending"
        last = convert(signer, uint256)
        assert signer != worker, "worker cannot sign"
        # The requester receives a quarter of a slash, so it cannot vouch for one.
        assert signer != requester, "requester cannot sign"
        # (a registered checker holds CHECKER_MIN_STAKE active: _sync_checker drops the
        # flag wherever active stake falls)
        assert self.is_checker[signer], "not a checker"
        # The amount at risk, and a cap more kept free: a claim on this signer still
        # takes the whole cap, whatever claims it signed (its own claimer positions were a
        # shield of its stake: tests/ledger/test_stake_shields.py).
        st: Stake = self.stakes[signer]
        assert st.active - st.locked >= at_risk + SLASH_CAP, "stake at risk too low"
        signers.append(signer)
    return signers
