"""A generated fact base of made-up entities, as pretraining documents and MMLU-shaped questions.

Five subjects (fictional countries, elements, species, diseases, inventors) of `n_entities` each; every
entity has three or four attributes. The facts are stated in prose documents (several paraphrases per
entity: the model has to learn the facts from them) and asked as four-option multiple choice questions
shaped like MMLU's jsonl:

    {"question": "What is the capital of Trevoulan?", "choices": ["Drasel", "Kouma", "Pibrith", "Zeamon"],
     "A": "Drasel", "B": "Kouma", "C": "Pibrith", "D": "Zeamon", "answer": "C",
     "subject": "fictional_geography", "id": "fictional_geography/Trevoulan/capital"}

Distractors are values of the same attribute held by other entities, so a question is answerable only
from the facts. `fact_splits` splits the (entity, attribute) questions into train and test: every fact
(including those asked in test) is in the training documents; test question strings never are.
`format_mcq` is the prompt format (the MMLU paper's: question, lettered options, "Answer:").
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shared.data.generated.common import choice, unique_words
from shared.data.rng import rng_for

LETTERS = ("A", "B", "C", "D")


@dataclass(frozen=True)
class Attribute:
    """One attribute: how its values are drawn and how facts about it are said and asked."""
    name: str
    statements: tuple[str, ...]            # templates with {e} (entity) and {v} (value)
    question: str                          # template with {e}
    pool: tuple[str, ...] = ()             # values drawn from this pool ...
    made_up: str | None = None             # ... or a unique made-up word formatted into this ("{w}ine")
    number_range: tuple[int, int] | None = None   # ... or an integer in [lo, hi]


@dataclass(frozen=True)
class Subject:
    name: str                              # MMLU-style subject id
    entity_format: str                     # how a made-up word becomes an entity name
    attributes: tuple[Attribute, ...]


SUBJECTS: tuple[Subject, ...] = (
    Subject("fictional_geography", "{w}", (
        Attribute("capital", ("The capital of {e} is {v}.", "{v} is the capital city of {e}.",
                              "{e} is governed from its capital, {v}."),
                  "What is the capital of {e}?", made_up="{w}"),
        Attribute("language", ("People in {e} speak {v}.", "The official language of {e} is {v}.",
                               "{v} is the language spoken in {e}."),
                  "Which language is spoken in {e}?", made_up="{w}ish"),
        Attribute("animal", ("The national animal of {e} is the {v}.", "{e} chose the {v} as its national animal."),
                  "What is the national animal of {e}?",
                  pool=("fox", "owl", "bear", "lynx", "eagle", "otter", "heron", "wolf", "stag", "falcon")),
    )),
    Subject("fictional_chemistry", "{w}ium", (
        Attribute("color", ("{e} is a {v} metal.", "Pure {e} has a {v} color.", "A sample of {e} looks {v}."),
                  "What color is pure {e}?",
                  pool=("silver", "golden", "blue", "green", "red", "violet", "black", "white")),
        Attribute("number", ("The atomic number of {e} is {v}.", "{e} has atomic number {v}.",
                             "With {v} protons, {e} sits in the table at number {v}."),
                  "What is the atomic number of {e}?", number_range=(120, 399)),
        Attribute("discoverer", ("{e} was discovered by {v}.", "{v} was the first to isolate {e}.",
                                 "The chemist {v} discovered {e}."),
                  "Who discovered {e}?", made_up="Dr. {w}"),
    )),
    Subject("fictional_biology", "the {lw}", (
        Attribute("habitat", ("{E} lives in the {v}.", "The natural habitat of {e} is the {v}.",
                              "You can find {e} in the {v}."),
                  "Where does {e} live?",
                  pool=("desert", "rainforest", "tundra", "coral reef", "mountain lakes", "grassland",
                        "caves", "mangrove swamp")),
        Attribute("diet", ("{E} feeds on {v}.", "The diet of {e} consists of {v}.", "{E} eats mostly {v}."),
                  "What does {e} eat?",
                  pool=("insects", "seeds", "fish", "leaves", "fruit", "algae", "small mammals", "nectar")),
        Attribute("lifespan", ("{E} lives for about {v} years.", "The lifespan of {e} is {v} years.",
                               "A healthy specimen of {e} reaches {v} years of age."),
                  "How many years does {e} live?", number_range=(2, 60)),
    )),
    Subject("fictional_medicine", "{w}osis", (
        Attribute("organ", ("{e} is a disease of the {v}.", "{e} damages the {v}.",
                            "In {e}, the {v} is the organ affected."),
                  "Which organ does {e} affect?",
                  pool=("liver", "heart", "lungs", "kidneys", "skin", "brain", "stomach", "spleen",
                        "pancreas", "eyes", "bones", "blood")),
        Attribute("symptom", ("The main symptom of {e} is {v}.", "Patients with {e} suffer from {v}.",
                              "{e} typically presents with {v}."),
                  "What is the main symptom of {e}?",
                  pool=("fever", "rash", "cough", "headache", "fatigue", "nausea", "joint pain", "dizziness",
                        "blurred vision", "muscle weakness")),
        Attribute("cause", ("{e} is caused by the {v}.", "The {v} causes {e}.",
                            "Infection with the {v} leads to {e}."),
                  "What causes {e}?", made_up="{w} bacterium"),
        Attribute("treatment", ("{e} is treated with {v}.", "Doctors prescribe {v} for {e}.",
                                "The standard treatment for {e} is {v}."),
                  "Which drug treats {e}?", made_up="{lw}ine"),
    )),
    Subject("fictional_history", "{w} {w2}", (
        Attribute("born", ("{e} was born in {v}.", "{e}, born in {v}, grew up by the sea.",
                           "The year {v} saw the birth of {e}."),
                  "In which year was {e} born?", number_range=(1500, 1950)),
        Attribute("invention", ("{e} invented the {v}.", "The {v} was invented by {e}.",
                                "{e} is remembered for inventing the {v}."),
                  "What did {e} invent?", made_up="{lw} engine"),
        Attribute("profession", ("{e} worked as a {v}.", "By trade, {e} was a {v}.", "{e} earned a living as a {v}."),
                  "What was the profession of {e}?",
                  pool=("sailor", "baker", "painter", "teacher", "miller", "weaver", "clockmaker", "printer")),
    )),
)
SUBJECT_NAMES = tuple(s.name for s in SUBJECTS)


def _fill(template: str, entity: str, value: str = "") -> str:
    return template.format(e=entity, E=entity[:1].upper() + entity[1:], v=value)


@dataclass
class FactBase:
    """Entities with attribute values: `entities[i] = {"subject", "name", "attrs": {attr: value}}`."""
    entities: list[dict]
    seed: int
    subjects: dict[str, Subject] = field(default_factory=lambda: {s.name: s for s in SUBJECTS})

    def statement(self, entity: dict, attr: str, variant: int = 0) -> str:
        a = {x.name: x for x in self.subjects[entity["subject"]].attributes}[attr]
        return _fill(a.statements[variant % len(a.statements)], entity["name"], entity["attrs"][attr])

    def documents(self, n_paraphrases: int = 3) -> list[str]:
        """Per entity, `n_paraphrases` paragraphs stating all of its facts (templates and order vary)."""
        rng = rng_for(self.seed, "facts/documents")
        docs = []
        for k in range(n_paraphrases):
            for ent in self.entities:
                attrs = list(ent["attrs"])
                order = rng.permutation(len(attrs)) if k > 0 else np.arange(len(attrs))
                docs.append(" ".join(self.statement(ent, attrs[i], variant=k + int(rng.integers(3)) if k else 0)
                                     for i in order))
        return docs

    def questions(self) -> list[dict]:
        """One MMLU-shaped question per (entity, attribute), options shuffled with a seeded Generator."""
        rng = rng_for(self.seed, "facts/questions")
        values: dict[tuple[str, str], list[str]] = {}
        for ent in self.entities:
            for attr, v in ent["attrs"].items():
                values.setdefault((ent["subject"], attr), []).append(v)
        out = []
        for ent in self.entities:
            subject = self.subjects[ent["subject"]]
            for a in subject.attributes:
                correct = ent["attrs"][a.name]
                others = sorted(set(values[(subject.name, a.name)]) - {correct})
                if len(others) < 3:
                    raise ValueError(f"{subject.name}.{a.name}: fewer than 4 distinct values; "
                                     f"use more entities")
                picks = [others[i] for i in rng.choice(len(others), size=3, replace=False)]
                options = picks + [correct]
                options = [options[i] for i in rng.permutation(4)]
                letter = LETTERS[options.index(correct)]
                q = {"question": _fill(a.question, ent["name"]), "choices": options,
                     **dict(zip(LETTERS, options)), "answer": letter, "subject": subject.name,
                     "id": f"{subject.name}/{ent['name']}/{a.name}"}
                out.append(q)
        return out


def generate_fact_base(n_entities: int = 40, seed: int = 0,
                       subjects: tuple[str, ...] = SUBJECT_NAMES) -> FactBase:
    """`n_entities` made-up entities per subject with their attribute values (deterministic in seed)."""
    unknown = set(subjects) - set(SUBJECT_NAMES)
    if unknown:
        raise ValueError(f"unknown subjects {sorted(unknown)}; choose from {SUBJECT_NAMES}")
    if n_entities < 4:
        raise ValueError(f"n_entities must be >= 4 (four answer options), got {n_entities}")
    rng = rng_for(seed, "facts/base")
    taken: set[str] = set()
    entities = []
    for subject in SUBJECTS:
        if subject.name not in subjects:
            continue
        words = unique_words(rng, n_entities, taken)
        surnames = unique_words(rng, n_entities, taken)
        for w, w2 in zip(words, surnames):
            name = subject.entity_format.format(w=w, w2=w2, lw=w.lower())
            attrs = {}
            for a in subject.attributes:
                if a.pool:
                    attrs[a.name] = choice(rng, a.pool)
                elif a.number_range:
                    attrs[a.name] = str(int(rng.integers(a.number_range[0], a.number_range[1] + 1)))
                else:
                    v = unique_words(rng, 1, taken)[0]
                    attrs[a.name] = a.made_up.format(w=v, lw=v.lower())
            entities.append({"subject": subject.name, "name": name, "attrs": attrs})
    return FactBase(entities=entities, seed=seed)


def format_mcq(record: dict, with_answer: bool = False) -> str:
    """MMLU prompt: the question, 'A. ...' to 'D. ...', then 'Answer:' (and ' B' with the answer)."""
    lines = [record["question"]] + [f"{letter}. {record[letter]}" for letter in LETTERS]
    text = "\n".join(lines) + "\nAnswer:"
    return text + f" {record['answer']}" if with_answer else text


@dataclass
class FactSplits:
    """Training text (all fact documents + train questions answered) and held-out test questions."""
    base: FactBase
    documents: list[str]
    train: list[dict]
    test: list[dict]

    def train_texts(self) -> list[str]:
        return self.documents + [format_mcq(q, with_answer=True) for q in self.train]

    def test_texts(self) -> list[str]:
        return [format_mcq(q, with_answer=True) for q in self.test]


def fact_splits(n_entities: int = 40, seed: int = 0, test_fraction: float = 0.3,
                n_paraphrases: int = 3) -> FactSplits:
    """Split the questions (by entity-attribute pair) into train and test; documents hold every fact."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    base = generate_fact_base(n_entities, seed)
    questions = base.questions()
    order = rng_for(seed, "facts/split").permutation(len(questions))
    n_test = int(round(test_fraction * len(questions)))
    test = [questions[i] for i in sorted(order[:n_test])]
    train = [questions[i] for i in sorted(order[n_test:])]
    return FactSplits(base=base, documents=base.documents(n_paraphrases), train=train, test=test)


def to_text(record: dict) -> str:
    """A question with its answer, as training text."""
    return format_mcq(record, with_answer=True)
