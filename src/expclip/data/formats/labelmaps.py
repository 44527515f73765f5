"""Native label ids and names of each benchmark -> canonical class names.

Written as explicit tables, one per dataset, so that they can be read against the protocol line by line. A
dataset with N classes uses the first N of ``labels.CLASS_ORDER``; ``None`` marks a native id that is dropped.
"""

from __future__ import annotations

# RAF-DB basic, EmoLabel/list_patition_label.txt: 1-based ids.
RAFDB = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}

# AffectNet `expression` column (legacy CSV) and `<id>_exp.npy` (2021 release). 8 none, 9 uncertain, 10 non-face
# are dropped for every variant; contempt (7) is dropped for AffectNet-7.
AFFECTNET = {0: "neutral", 1: "happiness", 2: "sadness", 3: "surprise", 4: "fear", 5: "disgust", 6: "anger",
             7: "contempt", 8: None, 9: None, 10: None}

# FERPlus vote columns, in file order (fer2013new.csv after Usage/Image name; label.csv after name and box).
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
                   "unknown", "NF")
FERPLUS = {"neutral": "neutral", "happiness": "happiness", "surprise": "surprise", "sadness": "sadness",
           "anger": "anger", "disgust": "disgust", "fear": "fear", "contempt": "contempt", "unknown": None, "NF": None}

# DFEW EmoLabel_DataSplit/*/set_N.csv: 1-based ids already in the canonical order (id - 1).
DFEW = {1: "happiness", 2: "sadness", 3: "neutral", 4: "anger", 5: "surprise", 6: "disgust", 7: "fear"}

# Folder / CSV names of FERV39k, AFEW and CAER-S (CAER-S spells anger "Angry" in train and "Anger" in test).
BASIC7_NAMES = {"Angry": "anger", "Anger": "anger", "Disgust": "disgust", "Fear": "fear", "Happy": "happiness",
                "Neutral": "neutral", "Sad": "sadness", "Surprise": "surprise"}

# MAFW single-label split files (`00025.mp4 anger`).
MAFW = {"anger": "anger", "disgust": "disgust", "fear": "fear", "happiness": "happiness", "neutral": "neutral",
        "sadness": "sadness", "surprise": "surprise", "contempt": "contempt", "anxiety": "anxiety",
        "helplessness": "helplessness", "disappointment": "disappointment"}
