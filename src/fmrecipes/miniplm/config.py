"""Configuration of the MiniPLM recipe (arXiv 2410.17215)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.dist import RunConfig
from ..core.gpt import GPTConfig
from ..core.train import TrainConfig
from ..data.corpora import CorpusConfig
from ..errors import ConfigError

METHODS = ("no_kd", "vanilla_kd", "vanilla_kd_steps", "random", "miniplm", "rho")
SELECTORS = ("miniplm", "random", "teacher-loss", "rho")


@dataclass
class StudentSpec:
    name: str = "small"
    model: GPTConfig = field(default_factory=GPTConfig)


@dataclass
class MiniPLMConfig:
    out: str = "runs/miniplm"
    data: CorpusConfig = field(default_factory=CorpusConfig)
    # Every model here shares the corpus tokenizer, vocab_size and seq_len (they override the model sections).
    vocab_size: int = 2048
    seq_len: int = 64
    # The corpus's training documents are split three ways (pool.document_split): the teacher's data, D_ref (the
    # reference's data) and D, the scored pool (the rest); no model that scores D has seen any of its documents.
    teacher_fraction: float = 0.4
    ref_fraction: float = 0.1
    teacher: GPTConfig = field(default_factory=GPTConfig)
    teacher_train: TrainConfig = field(default_factory=TrainConfig)
    reference: GPTConfig = field(default_factory=GPTConfig)
    reference_train: TrainConfig = field(default_factory=TrainConfig)
    students: list[StudentSpec] = field(default_factory=lambda: [StudentSpec()])
    student_train: TrainConfig = field(default_factory=TrainConfig)  # steps: see student_passes
    # The headline budget (the paper's main setting): every student trains for this many passes over the selected
    # data (alpha·|D| instances), so the MiniPLM student sees each kept instance about once and the no-KD student
    # sees that many instances of D; None trains student_train.steps.
    student_passes: float | None = 1.0
    # The data-limited table: no KD and MiniPLM (first student) trained this many steps, repeating their data
    # (MiniPLM's 1/alpha times as often); None skips it.
    data_limited_steps: int | None = None
    skip_eos_positions: bool = True  # scoring and Vanilla KD skip positions whose input is EOS (official code)
    alpha: float = 0.5
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    kd_ratio: float = 0.5  # Vanilla KD: (1 - kd_ratio)·CE + kd_ratio·soft-label CE (the official trainer)
    kd_temperature: float = 1.0
    rho_proxy_steps: int = 50  # RHO's student proxy: a student trained this many steps on a random slice of D
    cross_family: bool = True  # also train a Llama student (Hugging Face class) on no_kd and miniplm data
    score_batch_size: int = 32
    score_chunk: int = 512  # instances per resumable scoring chunk
    seed: int = 0  # draws D_ref
    seeds: list[int] = field(default_factory=lambda: [0])  # replicates: each reseeds D_ref, every model and order
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ConfigError(f"alpha={self.alpha} must be in (0, 1]")
        if not (0.0 < self.ref_fraction and 0.0 < self.teacher_fraction
                and self.ref_fraction + self.teacher_fraction < 1.0):
            raise ConfigError(f"teacher_fraction={self.teacher_fraction} and ref_fraction={self.ref_fraction} must "
                              "be positive with a sum below 1 (the rest of the documents is the scored pool D)")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ConfigError(f"methods: unknown {', '.join(bad)}; choose from {', '.join(METHODS)}")
        if self.student_passes is not None and self.student_passes <= 0:
            raise ConfigError(f"student_passes={self.student_passes} must be positive (null: student_train.steps)")
        if self.data_limited_steps is not None and self.data_limited_steps <= 0:
            raise ConfigError(f"data_limited_steps={self.data_limited_steps} must be positive (or null to skip)")
        names = [s.name for s in self.students]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"students must have distinct names, got {names}")
