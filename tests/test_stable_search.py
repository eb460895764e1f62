"""The stable mode's cycle search on synthetic maps: fixed points, cycles, canonical members."""

import numpy as np
import pytest
import tensorflow as tf

from tfflowcomp import stable_search

# States are length-2 integer vectors; the map moves them along chains into cycles.
_CYCLES = {
    (0, 0): (0, 0),  # fixed point
    (1, 5): (1, 2), (1, 2): (1, 5),  # 2-cycle, canonical (1, 2)
    (3, 3): (2, 9), (2, 9): (2, 8), (2, 8): (3, 3),  # 3-cycle, canonical (2, 8)
    **{(4, k): (4, (k + 1) % 9) for k in range(9)},  # 9-cycle, longer than MAX_CYCLE
}
_CHAINS = {(7, 7): (6, 6), (6, 6): (1, 5), (9, 9): (3, 3), (8, 8): (0, 0), (5, 5): (4, 7)}
_MAP = {**_CYCLES, **_CHAINS}


def _step(state):
  """The synthetic map as a graph function of a float32 [2] state (a lookup table)."""
  keys = tf.constant([k for k in _MAP], tf.float32)
  values = tf.constant([v for v in _MAP.values()], tf.float32)
  row = tf.argmax(tf.cast(tf.reduce_all(tf.equal(keys, state), axis=1), tf.int32))
  return values[row]


def _settle(start, max_iterations=20):
  iterations, canonical, length = stable_search.settle(
      _step, tf.constant(start, tf.float32), tf.constant(max_iterations))
  return int(iterations), tuple(int(v) for v in canonical.numpy()), int(length)


@pytest.mark.parametrize("start,canonical,length,iterations", [
    ((0, 0), (0, 0), 1, 1),
    ((8, 8), (0, 0), 1, 2),
    ((1, 5), (1, 2), 2, 2),
    ((7, 7), (1, 2), 2, 4),
    ((2, 8), (2, 8), 3, 3),
    ((9, 9), (2, 8), 3, 4),
])
def test_walks_end_at_the_cycles_canonical_member(start, canonical, length, iterations):
  assert _settle(start) == (iterations, canonical, length)


def test_the_canonical_member_does_not_depend_on_the_entry_point():
  for cycle in ([(1, 5), (1, 2)], [(3, 3), (2, 9), (2, 8)]):
    found = {_settle(member)[1] for member in cycle}
    assert found == {min(cycle)}
    # Re-encoding the canonical member's image starts the walk at its successor: same answer.
    assert _settle(_MAP[min(cycle)])[1] == min(cycle)


def test_cycles_longer_than_the_limit_and_short_budgets_are_not_settled():
  assert _settle((4, 0), max_iterations=50) == (50, (4, 0), 0)
  assert _settle((7, 7), max_iterations=3) == (3, (7, 7), 0)


def test_runs_inside_tf_function():
  settle = tf.function(lambda start, budget: stable_search.settle(_step, start, budget))
  iterations, canonical, length = settle(tf.constant([9.0, 9.0]), tf.constant(20))
  assert (int(iterations), int(length)) == (4, 3)
  np.testing.assert_array_equal(canonical.numpy(), [2.0, 8.0])


def test_lexicographic_order():
  less = lambda a, b: bool(stable_search.lexicographically_less(tf.constant(a), tf.constant(b)))
  assert less([1, 2, 3], [1, 3, 0]) and not less([1, 3, 0], [1, 2, 3])
  assert not less([1, 2], [1, 2])
  assert less([[0, 9], [9, 9]], [[1, 0], [0, 0]])


def test_longer_cycles_are_found_when_allowed():
  _, canonical, length = stable_search.settle(_step, tf.constant([4.0, 5.0]), tf.constant(50),
                                              max_cycle=9)
  assert int(length) == 9
  np.testing.assert_array_equal(canonical.numpy(), [4.0, 0.0])
