"""Batch planning for the PyTorch backend: pure functions over prompt token lengths."""

from __future__ import annotations


def plan_batches(
    lengths: list[int], strategy: str, batch_size: int, max_tokens_per_batch: int | None, max_new_tokens: int
) -> list[list[int]]:
    """Group prompt indices into batches; every index appears exactly once.

    static: consecutive groups of `batch_size`. sorted_*: longest prompts first, so a batch pads little.
    dynamic: a batch grows while its padded size, rows x (longest prompt + max_new_tokens), stays within
    `max_tokens_per_batch` (null: no cap) and it has at most `batch_size` rows; a lone prompt always fits.
    """
    order = list(range(len(lengths)))
    if strategy.startswith("sorted_"):
        order.sort(key=lambda i: -lengths[i])
    if not strategy.endswith("dynamic"):
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        grown = max(longest, lengths[index])
        padded_tokens = (len(current) + 1) * (grown + max_new_tokens)
        fits_tokens = max_tokens_per_batch is None or padded_tokens <= max_tokens_per_batch
        if current and (len(current) >= batch_size or not fits_tokens):
            batches.append(current)
            current, grown = [], lengths[index]
        current.append(index)
        longest = grown
    if current:
        batches.append(current)
    return batches
