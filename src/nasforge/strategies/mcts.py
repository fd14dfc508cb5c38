"""Monte Carlo tree search with UCT over the space's decisions: DeepArchitect's searcher."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from nasforge import strategies
from nasforge.errors import InvalidConfigError, UnsupportedOperationError
from nasforge.spaces.base import SearchSpace
from nasforge.strategies.base import Strategy
from nasforge.trial import Proposal, Trial, TrialState

__all__ = ["MCTS", "NodeStats"]

#: Uniform completions drawn before the rollout falls back to an exact search for one that
#: was never proposed.
ROLLOUT_TRIES = 20


@dataclass(frozen=True)
class NodeStats:
    """What the tree knows about one node (a partial assignment of the decisions).

    Attributes:
        visits: Asks whose tree walk passed through the node (told or still pending).
        told: COMPLETE trials backed up through it.
        failed: Trials without a score (FAILED) backed up through it.
        mean: The mean score of the told trials, in the study's units (``None`` if none).
        value: The value UCT exploits: the mean reward in [0, 1], failures counting 0
            (``None`` before a trial is told).
    """

    visits: int
    told: int
    failed: int
    mean: float | None
    value: float | None


class _Node:
    """A node of the search tree; its children are created when a walk first reaches them."""

    __slots__ = ("children", "failed", "seen", "told", "total", "visits")

    def __init__(self, seen: int) -> None:
        self.visits = 0
        self.told = 0
        self.failed = 0
        self.total = 0.0
        self.seen = seen  # distinct architectures proposed under this node
        self.children: dict[int, _Node] = {}


@dataclass(frozen=True)
class _Cursor:
    """Where a node stands: decisions ``0..depth-1`` fixed (``prefix``), decision ``depth``
    narrowed to the options ``lo..hi-1`` (all of them without restructuring)."""

    depth: int
    lo: int
    hi: int
    prefix: tuple[int, ...]


@strategies.register("mcts")
class MCTS(Strategy):
    """UCT search of the tree of partial assignments of the space's decisions.

    Negrinho, R. and Gordon, G. "DeepArchitect: Automatically Designing and Training Deep
    Architectures." arXiv:1704.08792, 2017 (Section 5, its Monte Carlo tree search searcher
    and the variant with tree restructuring); the authors' code is ``MCTSearcher`` in
    ``darch/searchers.py`` of negrinho/deep_architect_legacy (the paper's experiments) and
    ``MCTSSearcher`` in ``deep_architect/searchers/mcts.py`` of negrinho/deep_architect. UCT
    is Kocsis, L. and Szepesvári, C. "Bandit based Monte-Carlo planning." ECML 2006.

    A node of the tree is a partial architecture: the root fixes nothing, a node at depth
    ``i`` fixes decisions ``0..i-1`` of ``space.decisions()``, its children are the options
    of decision ``i``. Each :meth:`ask`

    1. *selects*: from the root, goes down to the child of highest UCT score
       ``value + exploration * sqrt(2 ln N / n)`` (``N`` the visits of the node, ``n`` those
       of the child, ``value`` the child's mean reward); a child never visited scores
       infinity, ties are broken uniformly at random;
    2. *expands*: stops at the first node that had never been visited, which joins the tree
       (one new node per ask; nodes are created only when a walk reaches them, so memory
       grows with the asks, not with the size of the space);
    3. *rolls out*: the decisions below that node are drawn uniformly at random.

    :meth:`tell` *backs up* the trial's reward into every node of the walk that proposed it;
    as in the reference code, the rollout's choices keep no statistics.

    Rewards. UCT wants rewards in [0, 1]; the paper's scores were validation accuracies in
    [0, 1] used as they are. Here scores come in the study's units (NAS-Bench-201's are
    percentages), so each node keeps the raw sum of its scores and its value is the mean
    mapped to [0, 1] by the smallest and largest score told so far (min-max; the map is
    affine, so the mapped mean is the mean of the mapped scores, with the latest bounds).
    ``score_range=(a, b)`` maps by fixed bounds instead (scores clipped to them);
    ``(0, 1)`` with accuracies is the paper's setting. Until two different scores are
    told, a told score is worth 0.5.

    Restructuring (``restructure=True``, the paper's "MCTS with tree restructuring", the
    reference code's ``ChoiceBisection``): every decision of ``k`` options becomes a
    sequence of binary choices that halve the range of its options (the lower half
    ``lo..mid-1`` or the upper half ``mid..hi-1``, ``mid = (lo + hi) // 2``), so that
    neighbouring options share statistics and a wide decision (OFA's 25 resolutions) does
    not spend ``k`` visits before UCT compares anything.

    Adaptations, each a difference from the reference code:

    * a trial without a score (FAILED, or STOPPED by the study's stopping rule) is backed
      up as a visit of reward 0 (the worst score): the reference leaves failures out, and
      then a child that always fails keeps its infinite score and is proposed forever;
    * no duplicates: a node whose architectures have all been proposed is *exhausted* and
      never selected, and the rollout draws a completion not proposed before (uniform draws,
      then an exact search among the completions left); only once the whole space has been
      proposed does the search repeat architectures (plain UCT then);
    * asks may run ahead of tells (parallel workers): a visit counts from the ask, its
      reward from the tell; a child visited but not yet told is valued at its parent's
      value;
    * the reference draws with the global NumPy generator; here everything comes from the
      strategy's seed (``self.rng``), so a study resumes by replay.

    Exploration. The paper's experiments ran ``c = 0.5`` (``MCTSearcher(b_search, in_d,
    0.5)`` in the legacy ``experiments.py``; the later library's default is 1.0) on
    accuracies in [0, 1]. With min-max rewards, NAS-Bench-201's broken cells (10%
    accuracy) squeeze three quarters of the cells into the top tenth of [0, 1], and a
    constant that large makes the search close to random. The default, ``exploration=0.1``,
    was chosen with ``run_comparison`` on NAS-Bench-201 (60 tuning seeds 1000..1059,
    CIFAR-10 and CIFAR-100, 100 and 200 queries; 0.02, 0.05, 0.1, 0.2, 0.5, bisection with
    0.05 to 0.2, and the paper's setting ``score_range=(0, 100)`` with 0.5 were tried: 0.05
    and 0.1 did best and alike, 0.02 about as well at 100 queries only; the paper's setting
    and bisection stayed below 0.1 on both datasets, bisection because the order of
    NAS-Bench-201's operations means nothing, so halving it groups unrelated operations: it
    suits ordered options, such as widths or resolutions).

    Args:
        space: A space that lists its decisions (``SearchSpace.decisions()``).
        seed: Seed of every tie-break and rollout.
        exploration: The UCT constant ``c`` (non-negative; 0 is greedy, yet every child is
            tried once before its siblings are compared).
        restructure: Bisect every decision into binary choices (see above).
        score_range: Fixed bounds ``(a, b)``, ``a < b``, mapping scores to rewards; ``None``
            maps by the scores told so far.

    Raises:
        InvalidConfigError: ``exploration`` negative or not finite; ``score_range`` not two
            finite numbers ``a < b``.
        UnsupportedOperationError: The space does not list its decisions (the message names
            the capability).

    Example:
        >>> from nasforge import spaces
        >>> from nasforge.trial import Trial, TrialState
        >>> mcts = MCTS(spaces.create("nb201"), seed=0)
        >>> arch = mcts.ask().arch
        >>> mcts.tell(Trial(0, arch, state=TrialState.COMPLETE, scores=(80.0,)))
        >>> mcts.stats().visits, mcts.node_count
        (1, 2)
    """

    requires = ("decisions",)

    def __init__(
        self,
        space: SearchSpace,
        *,
        seed: int | None = 0,
        exploration: float = 0.1,
        restructure: bool = False,
        score_range: tuple[float, float] | None = None,
    ) -> None:
        if not (isinstance(exploration, (int, float)) and math.isfinite(exploration)):
            raise InvalidConfigError(
                f"exploration must be a finite number >= 0, got {exploration!r}; the default "
                "is 0.1 (0 is greedy, larger explores more)."
            )
        if exploration < 0:
            raise InvalidConfigError(
                f"exploration must be >= 0, got {exploration!r}; the default is 0.1 (0 is "
                "greedy, larger explores more)."
            )
        if score_range is not None:
            bounds = tuple(score_range)
            if not (
                len(bounds) == 2
                and all(isinstance(b, (int, float)) and math.isfinite(b) for b in bounds)
                and bounds[0] < bounds[1]
            ):
                raise InvalidConfigError(
                    f"score_range must be two finite numbers (low, high) with low < high, got "
                    f"{score_range!r}; e.g. (0, 100) for accuracies in percent, or None to "
                    "map scores by the smallest and largest told so far."
                )
            score_range = (float(bounds[0]), float(bounds[1]))
        if not space.supports("decisions"):
            raise UnsupportedOperationError(
                f"Strategy MCTS needs a search space with the capability decisions() (its tree "
                f"fixes one decision per level); space {space.name!r} does not provide it (a "
                "space whose choices constrain each other, like DARTS where a node's two inputs "
                f"must differ, has none). Spaces with decisions: {', '.join(_decision_spaces())}."
            )
        super().__init__(space, seed=seed)
        self.exploration = float(exploration)
        self.restructure = bool(restructure)
        self.score_range = score_range
        self.counts = tuple(len(d.options) for d in space.decisions())
        # suffix[i]: architectures under a node that fixes decisions 0..i-1 (Python ints:
        # the large spaces overflow 64 bits)
        suffix = [1] * (len(self.counts) + 1)
        for i in range(len(self.counts) - 1, -1, -1):
            suffix[i] = suffix[i + 1] * self.counts[i]
        self._suffix = suffix
        self._root = _Node(seen=0)
        self._nodes = 1
        self._seen: set[tuple[int, ...]] = set()
        self._pending: dict[tuple[int, ...], deque[list[_Node]]] = {}
        self._low = math.inf
        self._high = -math.inf

    # -- the Strategy contract ----------------------------------------------------------------
    def ask(self) -> Proposal:
        used_up = self._root.seen >= self._suffix[0]
        node, cursor = self._root, self._start()
        path = [node]
        while cursor.depth < len(self.counts):
            option = self._select(node, cursor, used_up)
            child = node.children.get(option)
            cursor = self._step(cursor, option)
            if child is None:
                child = self._new_node(cursor)
                node.children[option] = child
            path.append(child)
            node = child
            if child.visits == 0:  # the walk leaves the tree: this node is the expansion
                break
        choices = self._rollout(cursor, node, used_up)
        for visited in path:
            visited.visits += 1
        if choices not in self._seen:
            self._add_seen(choices)
        self._pending.setdefault(choices, deque()).append(path)
        return Proposal(self.space.from_choices(choices))

    def tell(self, trial: Trial) -> None:
        choices = tuple(trial.arch.choices)
        if trial.arch.space != self.space.name or len(choices) != len(self.counts):
            return  # not an architecture of this tree (cannot happen in a study)
        waiting = self._pending.get(choices)
        if waiting:
            path = waiting.popleft()
            if not waiting:
                del self._pending[choices]
        else:  # a trial this strategy did not propose (enqueued): back up along the tree
            path = self._existing_path(choices)
            for node in path:
                node.visits += 1
            if choices not in self._seen:
                self._add_seen(choices)
        score = trial.score
        if trial.state is not TrialState.COMPLETE or score is None or not math.isfinite(score):
            for node in path:
                node.failed += 1
            return
        if self.score_range is not None:
            score = min(max(score, self.score_range[0]), self.score_range[1])
        self._low = min(self._low, score)
        self._high = max(self._high, score)
        for node in path:
            node.told += 1
            node.total += score

    # -- inspection ---------------------------------------------------------------------------
    @property
    def node_count(self) -> int:
        """Nodes of the tree (the root included): at most one more per ask, plus the
        exhausted nodes a walk met."""
        return self._nodes

    def stats(self, path: Sequence[int] = ()) -> NodeStats:
        """The statistics of the node reached from the root by the options ``path`` (with
        ``restructure``, each step is 0 for the lower half, 1 for the upper).

        Raises:
            InvalidConfigError: No node of the tree is reached by ``path``.
        """
        node = self._root
        for step, option in enumerate(path):
            child = node.children.get(int(option))
            if child is None:
                raise InvalidConfigError(
                    f"The tree has no node at path {tuple(path)!r} (step {step} is not in it); "
                    f"its children there are {sorted(node.children)}."
                )
            node = child
        return self._stats(node)

    def children(self, path: Sequence[int] = ()) -> dict[int, NodeStats]:
        """The statistics of the children (in the tree) of the node at ``path``, by option."""
        self.stats(path)
        node = self._root
        for option in path:
            node = node.children[int(option)]
        return {option: self._stats(child) for option, child in sorted(node.children.items())}

    def _stats(self, node: _Node) -> NodeStats:
        mean = node.total / node.told if node.told else None
        return NodeStats(node.visits, node.told, node.failed, mean, self._value(node))

    # -- the tree -----------------------------------------------------------------------------
    def _start(self, depth: int = 0, prefix: tuple[int, ...] = ()) -> _Cursor:
        """The cursor of a node that has just fixed decisions ``0..depth-1``; a decision of
        one option is fixed at once (no choice to make)."""
        while depth < len(self.counts) and self.counts[depth] == 1:
            prefix += (0,)
            depth += 1
        high = self.counts[depth] if depth < len(self.counts) else 0
        return _Cursor(depth, 0, high, prefix)

    def _step(self, cursor: _Cursor, option: int) -> _Cursor:
        """The cursor of the child reached by ``option``."""
        if not self.restructure:
            return self._start(cursor.depth + 1, (*cursor.prefix, option))
        middle = (cursor.lo + cursor.hi) // 2
        lo, hi = (cursor.lo, middle) if option == 0 else (middle, cursor.hi)
        if hi - lo == 1:
            return self._start(cursor.depth + 1, (*cursor.prefix, lo))
        return _Cursor(cursor.depth, lo, hi, cursor.prefix)

    def _options(self, cursor: _Cursor) -> range:
        return range(2) if self.restructure else range(cursor.lo, cursor.hi)

    def _size(self, cursor: _Cursor) -> int:
        """Architectures under the node at ``cursor``."""
        if cursor.depth == len(self.counts):
            return 1
        return (cursor.hi - cursor.lo) * self._suffix[cursor.depth + 1]

    def _under(self, cursor: _Cursor, choices: tuple[int, ...]) -> bool:
        d = cursor.depth
        return choices[:d] == cursor.prefix and (
            d == len(self.counts) or cursor.lo <= choices[d] < cursor.hi
        )

    def _new_node(self, cursor: _Cursor) -> _Node:
        self._nodes += 1
        return _Node(seen=sum(1 for c in self._seen if self._under(cursor, c)))

    def _exhausted(self, node: _Node | None, cursor: _Cursor) -> bool:
        return node is not None and node.seen >= self._size(cursor)

    def _value(self, node: _Node) -> float | None:
        """The mean reward of ``node`` in [0, 1] (failures count 0); ``None`` if untold."""
        if node.told + node.failed == 0:
            return None
        if self.score_range is not None:
            low, high = self.score_range
        else:
            low, high = self._low, self._high
        if node.told == 0:
            rewards = 0.0
        elif high > low:
            rewards = (node.total - low * node.told) / (high - low)
        else:
            rewards = 0.5 * node.told
        return rewards / (node.told + node.failed)

    def _select(self, node: _Node, cursor: _Cursor, used_up: bool) -> int:
        """The child of highest UCT score, ties broken uniformly at random; exhausted
        children are skipped unless the whole space has been proposed (``used_up``)."""
        while True:
            best = self._best(node, cursor, used_up)
            option = best[int(self.rng.integers(len(best)))] if len(best) > 1 else best[0]
            if option in node.children or used_up:
                return option
            # a child not in the tree yet: make it, and choose again if it is used up
            child_cursor = self._step(cursor, option)
            child = self._new_node(child_cursor)
            node.children[option] = child
            if not self._exhausted(child, child_cursor):
                return option

    def _best(self, node: _Node, cursor: _Cursor, used_up: bool) -> list[int]:
        """The options of highest UCT score at ``node``."""
        parent = self._value(node)
        log_visits = math.log(node.visits) if node.visits > 0 else 0.0
        best: list[int] = []
        best_score = -math.inf
        for option in self._options(cursor):
            child = node.children.get(option)
            if child is None:
                score = math.inf
            elif not used_up and self._exhausted(child, self._step(cursor, option)):
                continue
            elif child.visits == 0:
                score = math.inf
            else:
                value = self._value(child)
                if value is None:  # visited by asks not yet told
                    value = 0.5 if parent is None else parent
                score = value + self.exploration * math.sqrt(2.0 * log_visits / child.visits)
            if score > best_score:
                best, best_score = [option], score
            elif score == best_score:
                best.append(option)
        return best

    def _rollout(self, cursor: _Cursor, node: _Node, used_up: bool) -> tuple[int, ...]:
        """A completion of the node at ``cursor`` drawn uniformly; one never proposed unless
        the space is used up (uniform draws first, then an exact search)."""
        d = cursor.depth
        if d == len(self.counts):
            return cursor.prefix
        tries = 1 if used_up else ROLLOUT_TRIES
        for _ in range(tries):
            head = int(self.rng.integers(cursor.lo, cursor.hi))
            tail: list[int] = []
            if d + 1 < len(self.counts):
                tail = [int(c) for c in self.rng.integers(0, self.counts[d + 1 :])]
            choices = (*cursor.prefix, head, *tail)
            if used_up or choices not in self._seen:
                return choices
        # exact: walk down, keeping only options under which something is left
        taken = [c for c in self._seen if self._under(cursor, c)]
        prefix = cursor.prefix
        for depth in range(d, len(self.counts)):
            lo, hi = (cursor.lo, cursor.hi) if depth == d else (0, self.counts[depth])
            left = []
            for option in range(lo, hi):
                n = sum(1 for c in taken if c[depth] == option)
                if n < self._suffix[depth + 1]:
                    left.append(option)
            option = left[int(self.rng.integers(len(left)))]
            taken = [c for c in taken if c[depth] == option]
            prefix = (*prefix, option)
        return prefix

    def _add_seen(self, choices: tuple[int, ...]) -> None:
        self._seen.add(choices)
        for node in self._existing_path(choices):
            node.seen += 1

    def _existing_path(self, choices: tuple[int, ...]) -> list[_Node]:
        """The nodes of the tree on the way to ``choices``, from the root."""
        node, cursor = self._root, self._start()
        path = [node]
        while cursor.depth < len(self.counts):
            value = choices[cursor.depth]
            option = int(value >= (cursor.lo + cursor.hi) // 2) if self.restructure else value
            child = node.children.get(option)
            if child is None:
                break
            cursor = self._step(cursor, option)
            path.append(child)
            node = child
        return path


def _decision_spaces() -> list[str]:
    """Names of the registered spaces that declare their decisions (sorted)."""
    from nasforge import spaces

    return [
        name
        for name in spaces.names()
        if getattr(spaces.get(name), "decisions", SearchSpace.decisions)
        is not SearchSpace.decisions
    ]
