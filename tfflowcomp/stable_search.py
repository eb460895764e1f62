"""The stable mode's search: a set of latent symbols that re-encoding maps back onto itself.

Re-encoding is a deterministic map `step(s) = symbols(decode(s))` on latent symbols. Decoding
rounds pixels to 8 bits, so `step(s) != s` in general, and plain re-encoding walks
`s, step(s), step(step(s)), ...`, a little further from the original each generation. Every
walk on this finite set ends in a cycle; at moderate qualities it is a fixed point
(`step(s) == s`) after a few rounds, at high qualities often a 2-cycle `a -> b -> a` (measured on
512x512 Kodak crops at quality 0.9: a 2-cycle after ~35 rounds).

`settle` walks until it revisits one of the last `max_cycle` states and returns the cycle's
*canonical* member (the lexicographically smallest). The canonical member depends on the cycle
alone, not on where the walk entered it, so an encoder that codes it makes files that re-encode to
themselves: decoding `c` and re-encoding starts the walk at `step(c)`, inside the same cycle, and
ends at `c` again.
"""

import tensorflow as tf

# Longest cycle looked for; longer ones count as "not settled". Measured on Kodak crops: lengths
# 1-2 at quality 0.9; 2-6 at quality 1.0 (256x256 crops of kodim01-06: 2, 2, 2, 2, 4, 6).
MAX_CYCLE = 8
# Rounds the encoders try by default. Measured need: 5-12 up to quality ~0.8, ~35-45 near 0.9 (a
# 2-cycle); at 1.0, 45-64 on 256x256 crops of kodim01-06 (version 11), within 96 on 4 of 5
# full Kodak images (version 12; kodim03 needs more and is then coded plainly, with a message),
# and more than 96 but at most 192 on one of the 6 crops with version 14.
DEFAULT_ITERATIONS = 192


def lexicographically_less(a, b):
  """Whether `a` comes before `b` in row-major lexicographic order (bool []).

  Args:
    a, b: tensors of one shape and dtype.
  """
  a, b = tf.reshape(a, [-1]), tf.reshape(b, [-1])
  differs = tf.not_equal(a, b)
  first = tf.argmax(tf.cast(differs, tf.int32), output_type=tf.int32)
  return tf.logical_and(tf.reduce_any(differs), a[first] < b[first])


def settle(step, start, max_iterations, max_cycle: int = MAX_CYCLE):
  """Walks `s <- step(s)` from `start` until the walk closes a cycle of length <= `max_cycle`.

  Args:
    step: deterministic function, tensor -> tensor of the same shape and dtype (graph-traceable).
    start: the first state, e.g. float32 integer-valued symbols `[1, h, w, C]`.
    max_iterations: int32 [], most `step` calls.
    max_cycle: python int >= 1, longest cycle detected.
  Returns:
    `(iterations, canonical, cycle_length)`: int32 [] calls of `step`; the cycle's
    lexicographically smallest state (`start` if none was found); int32 [] length of the cycle
    (1 = fixed point), 0 if none was found within `max_iterations`.
  """
  # history[0] is the newest state; only the first `filled` entries are states of this walk.
  history = tf.repeat(start[None], max_cycle, axis=0)
  positions = tf.range(max_cycle)

  def keep_going(i, unused_history, unused_filled, cycle_length):
    return tf.logical_and(i < max_iterations, tf.equal(cycle_length, 0))

  def walk(i, history, filled, unused_cycle_length):
    new = step(history[0])
    seen = tf.stack([tf.reduce_all(tf.equal(new, history[j])) for j in range(max_cycle)])
    seen = tf.logical_and(seen, positions < filled)
    # The first match is at j: new == s_(i-j), so the cycle is s_(i-j) .. s_i, whose members
    # are history[0 .. j] before the shift and history[0 .. j] after it as well.
    cycle_length = tf.where(tf.reduce_any(seen),
                            tf.argmax(tf.cast(seen, tf.int32), output_type=tf.int32) + 1, 0)
    history = tf.concat([new[None], history[:-1]], axis=0)
    return i + 1, history, tf.minimum(filled + 1, max_cycle), cycle_length

  start_vars = (tf.constant(0), history, tf.constant(1), tf.constant(0))
  iterations, history, _, cycle_length = tf.while_loop(keep_going, walk, start_vars)
  canonical = history[0]
  for j in range(1, max_cycle):
    better = tf.logical_and(j < cycle_length, lexicographically_less(history[j], canonical))
    canonical = tf.where(better, history[j], canonical)
  canonical = tf.where(cycle_length > 0, canonical, start)
  return iterations, canonical, cycle_length
