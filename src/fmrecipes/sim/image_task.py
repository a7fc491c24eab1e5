"""The image task (SIM notes A.7.4): an EDM teacher trained here, its quality against NFE, one-step generators
distilled from it by each method with equal budgets, and the sampling speed-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..core import dist
from ..core.fileio import ensure_dir
from ..core.timing import interleaved_medians
from ..errors import ConfigError
from .classifier import FeatureClassifier, classify, rotations, train_classifier
from .config import TEACHER_FD_TARGET, SimConfig, distill_runs, run_settings
from .distill import curve, distill, extrapolated_images, final_metrics, images_to_reach, one_step
from .edm import sample_nfe
from .images import load_images, num_classes
from .quality import class_coverage, frechet_distance, precision_recall
from .teacher import TensorData, teacher_network, train_denoiser

Sampler = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


class Scorer:
    """FD-classifier, k-NN precision/recall and class coverage (labelled sets) of samples drawn from fixed
    latents."""

    def __init__(self, classifier: FeatureClassifier, reference: torch.Tensor, z: torch.Tensor,
                 labels: torch.Tensor | None, cfg: SimConfig, classes: int):
        self.classifier, self.z, self.labels, self.cfg, self.classes = classifier, z, labels, cfg, classes
        self.reference = classify(classifier, reference)[0]

    @torch.no_grad()
    def samples(self, sampler: Sampler) -> torch.Tensor:
        out = []
        for i in range(0, len(self.z), self.cfg.images.eval_batch):
            labels = None if self.labels is None else self.labels[i:i + self.cfg.images.eval_batch]
            out.append(sampler(self.z[i:i + self.cfg.images.eval_batch], labels).float().cpu())
        return torch.cat(out)

    def score(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        """The metrics of ``images``; ``labels`` (the classes they were asked for) adds ``label_acc``."""
        feats, preds = classify(self.classifier, images.clamp(-1, 1))
        finite = torch.isfinite(feats).all(1)
        precision, recall = precision_recall(self.reference, feats[finite], self.cfg.images.knn_k)
        out = {"fd": frechet_distance(self.reference, feats[finite]), "precision": precision, "recall": recall}
        if self.classes:
            out["classes"] = class_coverage(preds, self.classes)
        if labels is not None:
            out["label_acc"] = (preds == labels.cpu()).float().mean().item()
        return out

    def score_samples(self, sampler: Sampler) -> tuple[torch.Tensor, dict[str, float]]:
        images = self.samples(sampler)
        return images, self.score(images, self.labels)


def run_images(cfg: SimConfig, out: Path, env: dist.DistEnv) -> tuple[dict[str, float], dict[str, Any]]:
    """Returns the summary entries and what the plots need (sample grids, curves)."""
    device, ic = env.device, cfg.images
    classes = num_classes(ic.dataset)
    if ic.conditional and classes < 2:
        raise ConfigError(f"images.conditional needs labelled images: {ic.dataset} has no class subfolders")
    x_train, y_train = load_images(ic.dataset, "train", ic.resolution, ic.channels)
    x_test, y_test = load_images(ic.dataset, "test", ic.resolution, ic.channels)
    for split, x in (("train", x_train), ("test", x_test)):
        if len(x) <= ic.knn_k:
            raise ConfigError(f"images.dataset={ic.dataset} has {len(x)} {split} images; the k-NN precision/recall "
                              f"need more than images.knn_k={ic.knn_k}: add images")
    shape = tuple(x_train.shape[1:])
    summary: dict[str, float] = {}

    # the FD network: a classifier of the labels, or of rotations on an unlabelled set (then no class coverage)
    fd_train, fd_test = ((x_train, y_train), (x_test, y_test)) if classes >= 2 else (rotations(x_train),
                                                                                    rotations(x_test))
    classifier = train_classifier(TensorData(*fd_train), classes if classes >= 2 else 4, ic.classifier,
                                  out / "classifier", env, cfg.seed).to(device)
    summary["classifier_test_accuracy"] = (classify(classifier, fd_test[0])[1] == fd_test[1]).float().mean().item()

    cond = classes if ic.conditional else 0
    teacher = teacher_network(ic, shape, cfg.edm, cond, seed=cfg.seed)
    if not ic.teacher_path:  # yours is used as it is
        teacher = train_denoiser(teacher, TensorData(x_train, y_train if ic.conditional else None), ic.teacher,
                                 cfg.edm, out / "teacher", env)
    teacher = teacher.eval().to(device).requires_grad_(False)

    g = torch.Generator().manual_seed(cfg.seed + 1)
    ref_idx = torch.randperm(len(x_train), generator=g)[:ic.n_reference]
    z = torch.randn(ic.n_eval, *shape, generator=g).to(device)
    labels = (torch.arange(ic.n_eval) % classes).to(device) if ic.conditional else None
    scorer = Scorer(classifier, x_train[ref_idx], z, labels, cfg, classes if classes >= 2 else 0)
    grids: dict[str, torch.Tensor] = {"data": x_train[ref_idx[:64]]}
    for k, v in scorer.score(x_test[:ic.n_eval]).items():  # the floor: held-out real images
        summary[f"{k}.real_test"] = v

    for nfe in ic.nfe:
        images, scores = scorer.score_samples(lambda zb, lb, nfe=nfe: sample_nfe(teacher, zb, nfe, cfg.edm, lb))
        for k, v in scores.items():
            summary[f"{k}.teacher.nfe{nfe}"] = v
        grids[f"teacher {nfe} NFE"] = images[:64]
    top = max(ic.nfe)
    for k in scores:
        summary[f"{k}.teacher_nfe{top}"] = summary[f"{k}.teacher.nfe{top}"]

    def sample_labels(n: int) -> torch.Tensor | None:
        return torch.randint(classes, (n,), device=device) if ic.conditional else None

    def evaluate(generator: torch.nn.Module) -> dict[str, float]:
        return scorer.score_samples(lambda zb, lb: one_step(generator, zb, ic.distill.sigma_init, lb))[1]

    curves, generator = {}, None
    matched = sorted(ic.nfe)[-2:]  # the teacher's best two NFEs, whose FD one step is measured against
    runs = distill_runs(ic.distill, cfg.methods, ic.huber_c_ablation, ic.weighting_ablation)
    summary.update(run_settings(runs))
    for method, dcfg in runs.items():
        print(f"[sim] images {ic.dataset}: {method}", flush=True)
        generator = distill(teacher, teacher,
                            lambda n: (torch.randn(n, *shape, device=device), sample_labels(n)),
                            dcfg, cfg.edm, ensure_dir(out / method), env, evaluate)
        records = [r for r in curve(out / method) if "fd" in r]
        for k, v in final_metrics(out / method).items():
            summary[f"{k}.{method}"] = v
        summary["fd.init_generator"] = records[0]["fd"]
        summary[f"fd_mid.{method}"] = records[len(records) // 2]["fd"]
        tail = [r["fd"] for r in records if r["step"] > dcfg.steps / 2]  # one end point is noisy: the 2nd half
        summary[f"fd_tail.{method}"] = sum(tail) / len(tail)
        for nfe in matched:  # the budget at which one step first matches the teacher
            summary[f"images_to_teacher_fd_nfe{nfe}.{method}"] = images_to_reach(
                records, "fd", summary[f"fd.teacher.nfe{nfe}"])
        summary[f"images_to_{TEACHER_FD_TARGET:g}x_teacher_fd_nfe{top}_extrapolated.{method}"] = extrapolated_images(
            records, "fd", TEACHER_FD_TARGET * summary[f"fd.teacher.nfe{top}"])
        grids[method] = scorer.samples(lambda zb, lb, gen=generator: one_step(gen, zb, dcfg.sigma_init, lb))[:64]
        curves[method] = out / method / "metrics.jsonl"
    summary["distill_images_per_method"] = ic.distill.steps * ic.distill.batch_size

    # every generator has the teacher's architecture, so timing the last one times them all
    batch_z = z[:ic.eval_batch]
    batch_labels = None if labels is None else labels[:ic.eval_batch]
    with torch.no_grad():
        seconds = interleaved_medians({
            "one_step": lambda: one_step(generator, batch_z, ic.distill.sigma_init, batch_labels),
            "teacher": lambda: sample_nfe(teacher, batch_z, top, cfg.edm, batch_labels)}, 3, device)
    summary["speedup.one_step_vs_teacher"] = seconds["teacher"] / seconds["one_step"]
    summary["samples_per_s.one_step"] = ic.eval_batch / seconds["one_step"]
    summary[f"samples_per_s.teacher_nfe{top}"] = ic.eval_batch / seconds["teacher"]
    teacher_fd = {f"teacher, {nfe} NFE": summary[f"fd.teacher.nfe{nfe}"] for nfe in reversed(matched)}
    return summary, {"grids": grids, "curves": curves, "teacher_fd": teacher_fd}
