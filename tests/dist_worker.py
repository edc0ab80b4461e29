"""Run by `accelerate launch` from test_distributed.py: a run with credit='high_entropy' whose ranks
record the local sums they contribute to each reduced metric and the local values behind each
gathered threshold, so the test can recompute the global values."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import datasets

from hicra.testing.tiny import punctuation_grams, punctuation_reward, smoke_config
from hicra.train.hicra_trainer import HICRATrainer


class RecordingTrainer(HICRATrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.local_sums = []
        self.gathers = []
        self.quantiles = []

    def _reduce(self, values, kind):
        reduced = super()._reduce(values, kind)
        self.local_sums.append({"kind": kind, "local": values, "global": reduced})
        return reduced

    def _gather_values(self, values, kind):
        gathered = super()._gather_values(values, kind)
        self.gathers.append({"kind": kind, "local": values.tolist(), "all": gathered.tolist()})
        return gathered

    def _global_quantile(self, values, quantile, kind):
        result = super()._global_quantile(values, quantile, kind)
        self.quantiles.append({"kind": kind, "quantile": quantile, "result": result})
        return result


def main(model_dir: str, out: str) -> None:
    rows = [{"prompt": [{"role": "user", "content": f"What is {i} + {i}?"}]} for i in range(64)]
    args = smoke_config(
        out, max_steps=3, per_device_train_batch_size=4, seed=5, credit="high_entropy"
    )
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
        "gathers": trainer.gathers,
        "quantiles": trainer.quantiles,
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(record))
    trainer.accelerator.wait_for_everyone()  # then leave the gloo group together, cleanly
    trainer.accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
