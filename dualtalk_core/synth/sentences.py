"""A small generator of plausible conversational English: statements, opinions and questions.

Templates with slot lists give thousands of distinct sentences, enough that a model cannot
memorise transcripts, while staying pronounceable by espeak-ng (plain words, no digits).
"""
from __future__ import annotations

import numpy as np

BACKCHANNELS: tuple[str, ...] = ("mm-hm", "yeah", "right", "okay", "uh-huh")
# espeak spells "mm-hm" out letter by letter; phoneme input says it with closed lips.
_SPOKEN: dict[str, str] = {"mm-hm": "[[m-h'm-]]"}


def spoken_form(text: str) -> str:
    """What to hand espeak-ng for `text` (the transcript keeps the written form)."""
    return _SPOKEN.get(text, text)


_SLOTS: dict[str, tuple[str, ...]] = {
    "person": ("my sister", "my brother", "our neighbour", "my friend Sam", "the teacher",
               "my boss", "a colleague of mine", "my cousin", "the old man next door",
               "my grandmother", "the new manager", "my flatmate"),
    "place": ("the market", "the beach", "the museum", "the library", "the station",
              "the park", "the city centre", "the mountains", "the coast", "the airport",
              "that little cafe", "the gym", "the cinema", "the hospital"),
    "time": ("yesterday", "last week", "this morning", "on Sunday", "last night",
             "a few days ago", "over the weekend", "last summer", "this afternoon"),
    "future": ("tomorrow", "next week", "on Friday", "this weekend", "next month",
               "later today", "in the summer", "after work"),
    "thing": ("a new bike", "some fresh bread", "a second hand car", "a pair of boots",
              "a big umbrella", "a cheap laptop", "a board game", "some flowers",
              "a lamp for the kitchen", "a few books", "a winter coat", "a little plant"),
    "activity": ("cooking", "running", "painting", "gardening", "swimming", "reading",
                 "playing the guitar", "hiking", "baking bread", "learning French",
                 "watching old films", "fixing bikes"),
    "topic": ("the weather", "the new train line", "the football match", "the election",
              "the price of food", "the holiday plans", "the concert", "the project at work",
              "the film we saw", "the noise upstairs"),
    "adj": ("great", "strange", "boring", "wonderful", "expensive", "funny", "difficult",
            "lovely", "surprising", "exhausting", "brilliant", "quiet"),
    "feel": ("happy", "tired", "worried", "excited", "relieved", "annoyed", "curious",
             "nervous", "glad"),
}

_STATEMENTS: tuple[str, ...] = (
    "I went to {place} {time}, and it was {adj}.",
    "{Person} bought {thing} {time}.",
    "I have been {activity} a lot lately.",
    "Honestly, I think {topic} is a bit {adj}.",
    "We are going to {place} {future}.",
    "{Person} told me about {topic}, it sounded {adj}.",
    "I was so {feel} when I heard the news.",
    "Well, I tried {activity} once, but it was {adj}.",
    "You know, {person} is really into {activity} now.",
    "I need to get {thing} before {future}.",
    "The queue at {place} was {adj} {time}.",
    "I am not sure, but {person} might come along {future}.",
    "It was {adj}, we stayed at {place} until late.",
    "Actually, I read something about {topic} {time}.",
    "I felt a bit {feel} about {topic}, to be honest.",
    "Let me think, we could meet at {place} {future}.",
    "I finally found {thing} at {place}.",
    "That reminds me, {person} started {activity} {time}.",
)
_QUESTIONS: tuple[str, ...] = (
    "Have you ever been to {place}?",
    "What do you think about {topic}?",
    "Are you going to {place} {future}?",
    "Did you hear about {topic}?",
    "Do you like {activity}?",
    "Why was it so {adj}?",
    "Where did you buy {thing}?",
    "How was {place} {time}?",
    "Would you come with me {future}?",
    "Is {person} still {activity}?",
    "Really, was it that {adj}?",
    "Can you believe {person} went to {place}?",
    "Do you want to try {activity} with me?",
    "Have you talked to {person} {time}?",
    "So what happened at {place}?",
    "Was {topic} as {adj} as they said?",
    "What are you doing {future}?",
    "Did {person} enjoy {activity}?",
)
_EXCLAMATIONS: tuple[str, ...] = (
    "Oh, that is {adj}!", "No way, {person} did that?", "Oh wow, that sounds {adj}!",
    "Ha, I love {activity}!", "Oh really, how {adj}!", "That is so {adj}!",
    "The day at {place} was {adj}!",
)
_OPENERS: tuple[str, ...] = ("Well, ", "So, ", "You know, ", "Oh, ", "Honestly, ", "Anyway, ",
                             "Actually, ", "Hmm, ", "Right, so ", "And ")
_TAILS: tuple[str, ...] = (", but I am not sure", ", if you ask me", ", to be fair",
                           ", which was nice", ", as usual", ", believe it or not",
                           ", and then it started raining", ", I suppose")


def _fill(template: str, rng: np.random.Generator) -> str:
    values = {k: _SLOTS[k][rng.integers(len(_SLOTS[k]))] for k in _SLOTS}
    values["Person"] = values["person"][0].upper() + values["person"][1:]
    return template.format(**values)


def make_sentence(rng: np.random.Generator, question_prob: float = 0.3,
                  exclamation_prob: float = 0.1) -> str:
    """One random sentence; questions end in `?` (the corpus reads questions from that)."""
    u = rng.random()
    if u < question_prob:
        pool = _QUESTIONS
    elif u < question_prob + exclamation_prob:
        pool = _EXCLAMATIONS
    else:
        pool = _STATEMENTS
    text = _fill(pool[rng.integers(len(pool))], rng)
    if pool is _STATEMENTS and rng.random() < 0.3:
        text = text[:-1] + _TAILS[rng.integers(len(_TAILS))] + text[-1]
    if rng.random() < 0.3:
        opener = _OPENERS[rng.integers(len(_OPENERS))]
        first = text if text[:2] == "I " else text[0].lower() + text[1:]
        text = opener + first
    return text


def is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith("?")
