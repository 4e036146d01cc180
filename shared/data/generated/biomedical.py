"""A generated biomedical world: made-up diseases, genes and drugs stated in PubMed-abstract-like
documents (pretraining text) and asked in the published formats of MedMCQA, MedQA and PubMedQA.

Each disease has an organ, a presenting symptom, a causal gene, a first-line drug (whose name ends in
the stem of its class, as real drug names do: -mab antibodies, -tinib kinase inhibitors, -rsen antisense
oligonucleotides, -stat enzyme inhibitors) and that drug's commonest adverse effect. `documents`
states every fact in several kinds of abstract (review, genetics study, trial with conclusion,
pharmacology note, case report), with varied templates and numbers.

Questions are split by disease (`biomedical_splits`): a test disease's questions, in every format,
are never training questions, while its facts are in the pretraining documents, as MedMCQA's answers
are in PubMed. Records are shaped like the published files:

    MedMCQA  {"id", "question", "opa", "opb", "opc", "opd", "cop" (1-based), "choice_type": "single",
              "exp", "subject_name", "topic_name"}
    MedQA    {"question" (a vignette), "options": {"A": .., "D": ..}, "answer" (text), "answer_idx",
              "meta_info"}
    PubMedQA {"pubid", "question", "context": {"contexts": [..], "labels": [..]}, "long_answer",
              "final_decision": yes | no | maybe}

PubMedQA items are trial abstracts written fresh for the questions (never in the pretraining
documents), without their conclusion, which `final_decision` summarises: the result sentence says
it, and it agrees with the world (a disease's own drug works, another disease's drug does not;
"maybe" for a trend that missed significance). `write_benchmark_files` writes jsonl files that
shared.eval.formats.read_medmcqa / read_medqa / read_pubmedqa read back.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.data.formats import write_jsonl
from shared.data.generated.common import choice, made_up_word
from shared.data.rng import rng_for

ORGANS = ("liver", "heart", "lungs", "kidneys", "skin", "brain", "pancreas", "thyroid", "retina",
          "bone marrow", "colon", "spleen")
SYMPTOMS = ("jaundice", "chest pain", "chronic cough", "hematuria", "pruritic rash", "seizures", "polyuria",
            "weight loss", "night sweats", "blurred vision", "joint pain", "muscle weakness")
SIDE_EFFECTS = ("nausea", "headache", "alopecia", "hepatotoxicity", "insomnia", "dry mouth", "neutropenia",
                "peripheral neuropathy", "hypotension", "photosensitivity")
# stem -> what the class is (real naming conventions: USAN stems)
DRUG_CLASSES = {"mab": "a monoclonal antibody against", "tinib": "a kinase inhibitor that blocks",
                "rsen": "an antisense oligonucleotide that silences", "stat": "an enzyme inhibitor of"}
DISEASE_SUFFIXES = ("osis", "itis", "emia", "opathy", "oma")
FORMATS = ("medmcqa", "medqa", "pubmedqa")
POOLS = {"organ": ORGANS, "symptom": SYMPTOMS, "side_effect": SIDE_EFFECTS}   # shared values; genes and drugs are unique
DECISIONS = ("yes", "no", "maybe")
# MedMCQA-style terse stems: attribute -> (question template, subject_name)
# (the stems name the disease or drug last, and the documents state each fact in that direction too:
# a decoder recalls "X -> fact" from text that says "X ... fact", not from "fact ... X")
MEDMCQA_QUESTIONS = {
    "organ": ("{D} primarily affects which organ?", "Pathology"),
    "symptom": ("The most common presenting symptom of {d} is:", "Medicine"),
    "gene": ("{D} is caused by mutations in which gene?", "Genetics"),
    "drug": ("The drug of choice for {d} is:", "Pharmacology"),
    "side_effect": ("The commonest adverse effect of {drug} is:", "Pharmacology"),
}
MEDQA_QUESTIONS = {
    "drug": "Which of the following is the drug of choice for {d}?",
    "gene": "{D} is caused by mutations in which of the following genes?",
    "organ": "{D} primarily affects which of the following organs?",
}


@dataclass(frozen=True)
class Disease:
    name: str
    organ: str
    symptom: str
    gene: str
    drug: str
    drug_class: str          # a key of DRUG_CLASSES
    side_effect: str

    def value(self, attr: str) -> str:
        return getattr(self, attr)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def generate_diseases(n_diseases: int = 60, seed: int = 0) -> list[Disease]:
    """`n_diseases` made-up diseases with distinct names, genes and drugs (deterministic in seed)."""
    if n_diseases < 4:
        raise ValueError(f"n_diseases must be >= 4 (four answer options), got {n_diseases}")
    rng = rng_for(seed, "biomedical/world")
    names, genes, drugs, taken = set(), set(), set(), set()
    out = []
    attempts = 0
    while len(out) < n_diseases:
        attempts += 1
        if attempts > 100 * n_diseases:
            raise ValueError(f"could not make {n_diseases} distinct diseases; ask for fewer")
        root = made_up_word(rng, 2, 3).rstrip("aeiou") or "Tor"
        name = root + choice(rng, DISEASE_SUFFIXES)
        gene = "".join(rng.choice(list("BCDFGHKLMNPRSTVZ"), size=3)) + str(int(rng.integers(1, 20)))
        stem = choice(rng, tuple(DRUG_CLASSES))
        drug = made_up_word(rng, 2, 2).lower() + stem
        if name in names or gene in genes or drug in drugs or root.lower() in taken:
            continue
        names.add(name); genes.add(gene); drugs.add(drug); taken.add(root.lower())
        out.append(Disease(name=name, organ=choice(rng, ORGANS), symptom=choice(rng, SYMPTOMS), gene=gene,
                           drug=drug, drug_class=stem, side_effect=choice(rng, SIDE_EFFECTS)))
    return out


# ------------------------------------------------------------------------------------------- documents
def _result(rng: np.random.Generator, decision: str, drug: str, symptom: str) -> str:
    """The Results sentence of a trial abstract, which carries its conclusion."""
    if decision == "yes":
        p = choice(rng, ("0.001", "0.002", "0.004", "0.01"))
        return choice(rng, (f"{_cap(drug)} significantly reduced {symptom} compared with placebo (p = {p}).",
                            f"{_cap(symptom)} resolved more often with {drug} than with placebo (p = {p}).",
                            f"Patients given {drug} had significantly less {symptom} (p = {p})."))
    if decision == "no":
        p = choice(rng, ("0.41", "0.57", "0.62", "0.88"))
        return choice(rng, (f"{_cap(symptom)} did not differ between the {drug} and placebo groups (p = {p}).",
                            f"{_cap(drug)} had no significant effect on {symptom} (p = {p}).",
                            f"Rates of {symptom} were similar with {drug} and placebo (p = {p})."))
    p = choice(rng, ("0.06", "0.07", "0.08", "0.09"))
    return choice(rng, (f"{_cap(drug)} showed a trend toward less {symptom} that did not reach significance (p = {p}).",
                        f"A possible reduction in {symptom} with {drug} was not statistically significant (p = {p})."))


CONCLUSIONS = {"yes": "{Drug} is effective for {d}.", "no": "{Drug} is not effective for {d}.",
               "maybe": "The benefit of {drug} in {d} remains uncertain."}


def trial_abstract(rng: np.random.Generator, d: Disease, drug: str, decision: str,
                   with_conclusion: bool = True) -> list[str]:
    """Sections of a randomised-trial abstract of `drug` in disease `d` (Background, Methods, Results,
    and Conclusions when `with_conclusion`)."""
    n = int(rng.integers(40, 400))
    sections = [f"{d.name} is a disorder of the {d.organ} that presents with {d.symptom}.",
                f"We randomised {n} patients with {d.name} to {drug} or placebo for {int(rng.integers(8, 53))} weeks.",
                _result(rng, decision, drug, d.symptom)]
    if with_conclusion:
        sections.append(CONCLUSIONS[decision].format(Drug=_cap(drug), drug=drug, d=d.name))
    return sections


def _document(rng: np.random.Generator, d: Disease, kind: int, world: list[Disease]) -> str:
    cls = DRUG_CLASSES[d.drug_class]
    age, sex = int(rng.integers(18, 80)), choice(rng, ("man", "woman"))
    n = int(rng.integers(12, 90))
    k = int(rng.integers(n // 2, n + 1))
    if kind == 0:    # review
        return " ".join([
            choice(rng, (f"{d.name} is a rare inherited disorder of the {d.organ}.",
                         f"{d.name} is a chronic disease that damages the {d.organ}.",
                         f"{d.name} primarily affects the {d.organ}.")),
            choice(rng, (f"Most patients present with {d.symptom}.",
                         f"The most common presenting symptom of {d.name} is {d.symptom}.")),
            choice(rng, (f"It is caused by loss-of-function variants in {d.gene}.",
                         f"{d.name} is caused by mutations in {d.gene}.")),
            choice(rng, (f"The drug of choice for {d.name} is {d.drug}, {cls} {d.gene}.",
                         f"{d.name} is treated with {d.drug}, {cls} {d.gene}."))])
    if kind == 1:    # genetics study
        return (f"Background: The genetic basis of {d.name} was unknown. Methods: We sequenced {n} families "
                f"with {d.name}. Results: Pathogenic variants in {d.gene} were found in {k} of {n} families. "
                f"Conclusions: {d.gene} is the major gene for {d.name}, a disease of the {d.organ}.")
    if kind == 2:    # trial of the disease's own drug, or of another disease's drug
        own = rng.random() < 0.7
        drug = d.drug if own else choice(rng, [x.drug for x in world if x.drug != d.drug])
        decision = ("yes" if rng.random() < 0.8 else "maybe") if own else ("no" if rng.random() < 0.8 else "maybe")
        heads = ("Background: ", "Methods: ", "Results: ", "Conclusions: ")
        return " ".join(h + s for h, s in zip(heads, trial_abstract(rng, d, drug, decision)))
    if kind == 3:    # pharmacology note
        return " ".join([f"{_cap(d.drug)} is {cls} {d.gene}.",
                         choice(rng, (f"It is approved for the treatment of {d.name}.",
                                      f"It is the drug of choice for {d.name}.")),
                         choice(rng, (f"The commonest adverse effect of {d.drug} is {d.side_effect}.",
                                      f"Adverse effects of {d.drug} include {d.side_effect}."))])
    return (f"A {age}-year-old {sex} presented with {d.symptom}. Examination showed involvement of the "
            f"{d.organ}. Genetic testing revealed a variant in {d.gene}, confirming {d.name}. Treatment with "
            f"{d.drug} was started; the patient later reported {d.side_effect}.")


def documents(world: list[Disease], docs_per_disease: int = 10, seed: int = 0) -> list[str]:
    """Pretraining abstracts: `docs_per_disease` per disease, cycling the five kinds, shuffled."""
    rng = rng_for(seed, "biomedical/documents")
    docs = [_document(rng, d, i % 5, world) for d in world for i in range(docs_per_disease)]
    return [docs[i] for i in rng.permutation(len(docs))]


# ------------------------------------------------------------------------------------------- questions
def _options(rng: np.random.Generator, attr: str, correct: str, world: list[Disease],
             n: int = 4) -> tuple[list[str], int]:
    """n shuffled options and the correct one's index. Distractors: the attribute's whole pool for
    shared values (organs, symptoms, adverse effects), else the values of `world`'s other diseases."""
    pool = POOLS[attr] if attr in POOLS else [w.value(attr) for w in world]
    others = sorted(set(pool) - {correct})
    if len(others) < n - 1:
        raise ValueError(f"fewer than {n} distinct {attr} values for a question about {correct!r}: "
                         f"use more diseases per split")
    opts = [others[i] for i in rng.choice(len(others), size=n - 1, replace=False)] + [correct]
    opts = [opts[i] for i in rng.permutation(n)]
    return opts, opts.index(correct)


def medmcqa_questions(diseases: list[Disease], world: list[Disease], seed: int = 0) -> list[dict]:
    """One MedMCQA-format question per (disease, attribute); distractors are `world`'s values."""
    rng = rng_for(seed, "biomedical/medmcqa")
    out = []
    for d in diseases:
        for attr, (template, subject) in MEDMCQA_QUESTIONS.items():
            opts, idx = _options(rng, attr, d.value(attr), world)
            out.append({"id": f"{d.name}/{attr}", "question": template.format(D=d.name, d=d.name, drug=d.drug),
                        **dict(zip(("opa", "opb", "opc", "opd"), opts)), "cop": idx + 1, "choice_type": "single",
                        "exp": f"{d.name}: {attr.replace('_', ' ')} is {d.value(attr)}.",
                        "subject_name": subject, "topic_name": attr})
    return out


def medqa_questions(diseases: list[Disease], world: list[Disease], per_attribute: int = 2,
                    seed: int = 0) -> list[dict]:
    """MedQA-format vignettes (a patient with a symptom; which drug / gene / organ for the named disease),
    `per_attribute` vignettes (other patients, other option sets) per disease and attribute, 4 options."""
    rng = rng_for(seed, "biomedical/medqa")
    out = []
    for d in diseases:
        for attr, ask in MEDQA_QUESTIONS.items():
            for _ in range(per_attribute):
                age, sex = int(rng.integers(18, 80)), choice(rng, ("man", "woman"))
                stem = (f"A {age}-year-old {sex} comes to the physician because of {d.symptom}. "
                        f"After evaluation, the diagnosis is made. {ask.format(d=d.name, D=d.name)}")
                opts, idx = _options(rng, attr, d.value(attr), world)
                letters = "ABCD"
                out.append({"question": stem, "options": dict(zip(letters, opts)), "answer": opts[idx],
                            "answer_idx": letters[idx], "meta_info": "step1" if attr == "gene" else "step2&3"})
    return out


def pubmedqa_questions(diseases: list[Disease], world: list[Disease], per_disease: int = 3,
                       seed: int = 0) -> list[dict]:
    """PubMedQA-format items: a fresh trial abstract without its conclusion, the question it asks, and
    final_decision (yes / no / maybe) agreeing with the world (see the module docstring)."""
    rng = rng_for(seed, "biomedical/pubmedqa")
    out = []
    for d in diseases:
        for j in range(per_disease):
            own = j % 2 == 0
            drug = d.drug if own else choice(rng, [x.drug for x in world if x.drug != d.drug])
            decision = ("yes" if own else "no") if rng.random() < 0.75 else "maybe"
            sections = trial_abstract(rng, d, drug, decision, with_conclusion=True)
            out.append({"pubid": f"{d.name}/{j}", "question": f"Does {drug} reduce {d.symptom} in {d.name}?",
                        "context": {"contexts": sections[:3], "labels": ["BACKGROUND", "METHODS", "RESULTS"]},
                        "long_answer": sections[3], "final_decision": decision})
    return out


def patient_questions(diseases: list[Disease]) -> list[dict]:
    """Patient-style questions with a reference answer and the keyword a correct answer names."""
    out = []
    for d in diseases:
        out.append({"question": f"I was just diagnosed with {d.name}. What medicine will I be given?",
                    "answer": f"{d.name} is treated with {d.drug}.", "keyword": d.drug, "disease": d.name})
        out.append({"question": f"My doctor says I have {d.name}. Which organ does it affect?",
                    "answer": f"{d.name} affects the {d.organ}.", "keyword": d.organ, "disease": d.name})
    return out


@dataclass
class BiomedicalSplits:
    """The world, its pretraining documents, and questions split by disease into train and test."""
    world: list[Disease]
    train_diseases: list[Disease]
    test_diseases: list[Disease]
    documents: list[str]
    seed: int

    def questions(self, fmt: str, split: str) -> list[dict]:
        if fmt not in FORMATS or split not in ("train", "test"):
            raise ValueError(f"format must be one of {FORMATS} and split train|test; got {fmt!r}, {split!r}")
        diseases = self.train_diseases if split == "train" else self.test_diseases
        make = {"medmcqa": medmcqa_questions, "medqa": medqa_questions, "pubmedqa": pubmedqa_questions}[fmt]
        # distractors come from the same split: a test disease's drug never appears as a wrong option
        # of a training question (finetuning would learn to avoid it)
        return make(diseases, diseases, seed=self.seed * 2 + (split == "test"))

    def patient_questions(self, split: str) -> list[dict]:
        return patient_questions(self.train_diseases if split == "train" else self.test_diseases)


def biomedical_splits(n_diseases: int = 60, test_fraction: float = 0.3, docs_per_disease: int = 10,
                      seed: int = 0) -> BiomedicalSplits:
    """Generate the world and split its diseases (hence every question about them) into train / test."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    world = generate_diseases(n_diseases, seed)
    order = rng_for(seed, "biomedical/split").permutation(len(world))
    n_test = max(1, int(round(test_fraction * len(world))))
    test = [world[i] for i in sorted(order[:n_test])]
    train = [world[i] for i in sorted(order[n_test:])]
    return BiomedicalSplits(world=world, train_diseases=train, test_diseases=test,
                            documents=documents(world, docs_per_disease, seed), seed=seed)


def write_benchmark_files(splits: BiomedicalSplits, out_dir: str | Path) -> dict[str, dict[str, Path]]:
    """Write `<out_dir>/<format>/<split>.jsonl` for the three formats; returns {format: {split: path}}."""
    paths: dict[str, dict[str, Path]] = {}
    for fmt in FORMATS:
        for split in ("train", "test"):
            path = Path(out_dir) / fmt / f"{split}.jsonl"
            write_jsonl(path, splits.questions(fmt, split))
            paths.setdefault(fmt, {})[split] = path
    return paths
