"""Run by `accelerate launch` from test_distributed.py: a HICRA run whose ranks record the local
sums they contribute to each reduced metric, so the test can recompute the global values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets

from hicra.tiny import punctuation_grams, punctuation_reward, smoke_config
from hicra.trainer import HICRATrainer


class RecordingTrainer(HICRATrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.local_sums = []

    def _reduce(self, values, kind):
        reduced = super()._reduce(values, kind)
        self.local_sums.append({"kind": kind, "local": values, "global": reduced})
        return reduced


def main(model_dir: str, out: str) -> None:
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}]} for i in range(64)]
    args = smoke_config(out, max_steps=3, per_device_train_batch_size=4, seed=5)
    trainer = RecordingTrainer(
        model=model_dir,
        reward_funcs=[punctuation_reward],
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        strategic_grams=punctuation_grams(),
    )
    trainer.train()
    rank = trainer.accelerator.process_index
    import torch.distributed as dist

    record = {
        "world": trainer.accelerator.num_processes,
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "sums": trainer.local_sums,
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(record))
    trainer.accelerator.wait_for_everyone()  # then leave the gloo group together, cleanly
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
