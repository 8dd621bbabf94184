"""The offline backend: enrich a short prompt with composition, lighting, medium, colour and detail cues.

AuraFlow follows long, literal descriptions (fal reports GenEval 0.64 -> 0.703 with prompt enhancement,
auraflow-reference §10), and a bare "a red fox in the snow" leaves framing, light and medium to chance. This
backend fills in only the facets the prompt does not already name, with phrases chosen to suit what the prompt
is about (a portrait is framed differently from a landscape) and the medium (painterly light for paintings).
It is deterministic per seed (``random.Random(seed)``, stable across Python versions for integer seeds), needs
no model and no network, and so is always available, including as what the tests exercise.

Prompts that are already detailed are left as they are: the user has made these choices.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

__all__ = ["template_expand"]

# A prompt with at least this many words is taken as already detailed and left unchanged.
DETAILED_WORDS = 40
# Below this many words every facet is filled in; between the two, only composition, lighting and medium.
SHORT_WORDS = 12

# ---------------------------------------------------------------------------------------------------------------
# What the prompt is about: keyword -> subject kind (first match in this order wins)

_SUBJECT_WORDS: dict[str, tuple[str, ...]] = {
    "person": (
        "man", "men", "woman", "women", "girl", "boy", "child", "children", "kid", "person", "people", "portrait",
        "face", "king", "queen", "prince", "princess", "knight", "warrior", "soldier", "wizard", "witch", "monk",
        "astronaut", "dancer", "musician", "chef", "farmer", "samurai", "ninja", "pirate", "lady", "gentleman",
        "grandmother", "grandfather", "student", "doctor", "scientist", "sailor", "explorer", "couple", "family",
        "elf", "detective", "cowboy", "worker", "athlete", "singer", "painter", "fisherman", "traveler",
    ),
    "animal": (
        "cat", "cats", "kitten", "dog", "dogs", "puppy", "fox", "wolf", "bear", "lion", "tiger", "leopard",
        "horse", "deer", "rabbit", "bunny", "owl", "eagle", "hawk", "bird", "birds", "parrot", "sparrow", "crow",
        "raven", "heron", "swan", "duck", "penguin", "whale", "dolphin", "shark", "fish", "octopus", "turtle",
        "frog", "lizard", "snake", "elephant", "giraffe", "zebra", "monkey", "gorilla", "panda", "koala",
        "squirrel", "hedgehog", "otter", "raccoon", "butterfly", "bee", "cow", "sheep",
        "goat", "pig", "chicken", "hummingbird", "jellyfish", "moth",
    ),
    "food": (
        "food", "cake", "bread", "coffee", "tea", "soup", "salad", "pizza", "burger", "sushi", "ramen",
        "noodles", "pasta", "fruit", "fruits", "apple", "apples", "lemon", "strawberries", "breakfast", "dessert",
        "pie", "croissant", "cocktail", "wine", "chocolate", "cookies", "pancakes", "sandwich", "dumplings",
    ),
    "object": (
        "bottle", "cup", "mug", "vase", "watch", "clock", "shoe", "shoes", "sneaker", "chair", "lamp", "book",
        "books", "camera", "guitar", "violin", "piano", "perfume", "ring", "necklace", "jewelry", "car", "bicycle",
        "motorcycle", "robot", "teapot", "candle", "sword", "helmet", "crown", "key", "typewriter", "radio",
        "headphones", "phone", "bag", "hat", "toy", "teddy", "sculpture", "statue", "jar", "bowl", "plant",
        "flower", "flowers", "rose", "bouquet", "terrarium", "globe", "lantern",
    ),
    "architecture": (
        "city", "street", "streets", "alley", "building", "buildings", "house", "cottage", "cabin", "castle",
        "palace", "cathedral", "church", "temple", "shrine", "tower", "skyline", "skyscraper", "bridge", "ruins",
        "village", "town", "market", "station", "harbor", "lighthouse", "room", "interior", "kitchen", "library",
        "cafe", "café", "bar", "restaurant", "shop", "bedroom", "hall", "courtyard", "garden", "greenhouse",
        "warehouse", "factory", "subway", "rooftop", "rooftops", "tokyo", "paris", "venice", "london",
    ),
    "landscape": (
        "landscape", "mountain", "mountains", "forest", "woods", "jungle", "lake", "river", "ocean", "sea",
        "beach", "coast", "cliff", "cliffs", "desert", "dunes", "valley", "canyon", "meadow", "field", "fields",
        "hills", "waterfall", "glacier", "island", "volcano", "sky", "clouds", "aurora", "stars", "galaxy",
        "planet", "moon", "sunset", "sunrise", "snow", "storm", "fjord", "savanna", "tundra", "swamp", "reef",
    ),
}

# ---------------------------------------------------------------------------------------------------------------
# Facets the prompt may already name (then that facet is not added)

_MEDIUM_WORDS: dict[str, tuple[str, ...]] = {
    "photo": ("photo", "photograph", "photography", "photorealistic", "dslr", "35mm", "50mm", "85mm", "polaroid",
              "film still", "bokeh", "f/1.4", "f/1.8", "f/2.8", "telephoto", "macro shot"),
    "painting": ("painting", "painted", "oil on canvas", "watercolor", "watercolour", "gouache", "acrylic",
                 "impressionist", "fresco", "brushstrokes", "impasto", "tempera"),
    "illustration": ("illustration", "illustrated", "anime", "manga", "cartoon", "comic", "drawing", "sketch",
                     "ink", "linework", "vector", "pixel art", "storybook", "cel shaded", "cel-shaded", "line art",
                     "woodcut", "linocut", "lithograph", "poster art", "flat design", "concept art"),
    "render": ("3d", "render", "rendered", "cgi", "octane", "blender", "unreal engine", "isometric", "low poly",
               "claymation", "clay render", "voxel"),
}
_LIGHT_WORDS = (
    "light", "lit", "lighting", "sunlight", "sunlit", "moonlight", "moonlit", "golden hour", "blue hour",
    "backlit", "rim light", "neon", "glow", "glowing", "shadow", "shadows", "candlelight", "lamplight",
    "overcast", "chiaroscuro", "silhouette", "dusk", "dawn", "twilight", "sunset", "sunrise", "night",
)
_FRAMING_WORDS = (
    "close-up", "closeup", "close up", "wide shot", "wide-angle", "wide angle", "aerial", "bird's-eye",
    "birds-eye", "overhead", "top-down", "low angle", "low-angle", "high angle", "full body", "full-body",
    "full-length", "medium shot", "headshot", "portrait of", "view of", "panorama", "panoramic", "macro",
    "centered", "symmetrical", "rule of thirds", "from above", "from below", "profile", "isometric",
)
_COLOUR_WORDS = (
    "red", "orange", "yellow", "green", "blue", "teal", "cyan", "purple", "violet", "pink", "magenta", "brown",
    "black", "white", "grey", "gray", "gold", "golden", "silver", "crimson", "scarlet", "turquoise", "amber",
    "beige", "ivory", "emerald", "navy", "pastel", "monochrome", "sepia", "palette", "colorful", "colourful",
)

# ---------------------------------------------------------------------------------------------------------------
# Phrases. Composition and lighting are noun phrases ("Framed as ...", "Lit by ..."); medium phrases complete
# "The image is ..."; colours complete "The colours are ..."; details are whole sentences.

_COMPOSITION: dict[str, tuple[str, ...]] = {
    "person": (
        "a close-up portrait framed from the shoulders up, the eyes level with the camera",
        "a three-quarter view at eye level with the figure slightly off-center",
        "a medium shot from the waist up, the figure placed on the left third of the frame",
        "a full-length view that shows the whole figure within its surroundings",
        "a gently low angle that gives the figure a quiet presence against an uncluttered background",
        "a profile view with open space in front of the face",
    ),
    "animal": (
        "a low, eye-level view taken close to the ground",
        "a tight close-up with the head and eyes filling most of the frame",
        "a medium shot with the animal on the right third and open space where it looks",
        "a wide view in which the animal sits small within its habitat",
        "a side view that shows the full body in a natural pose",
    ),
    "food": (
        "a close view at a forty-five degree angle across a rustic table",
        "a top-down flat lay with a few props arranged around the plate",
        "a low, table-level view with the dish sharp and the background softly blurred",
        "a tight close-up that shows texture, crumbs and steam",
    ),
    "object": (
        "a centered, product-style composition on a clean surface with soft reflections",
        "a three-quarter view from slightly above, the object sharp against a plain backdrop",
        "a close-up that shows the materials and small details",
        "a still-life arrangement on a tabletop with a softly blurred background",
        "a side view at eye level with generous negative space around the object",
    ),
    "architecture": (
        "a one-point perspective view straight down the middle",
        "a wide establishing view from street level",
        "an elevated view over the surrounding rooftops",
        "a symmetrical frontal view with strong vertical lines",
        "a view through a foreground archway that frames the scene",
        "a wide interior view from a corner, showing depth and the far wall",
    ),
    "landscape": (
        "a sweeping wide-angle view with a clear foreground, middle ground and distant horizon",
        "a high vantage point looking out across the land",
        "a panoramic composition with the horizon on the lower third and a large sky",
        "a view framed by dark foreground rocks leading the eye into the distance",
        "a wide view with a winding path or shoreline leading toward the horizon",
    ),
    "generic": (
        "a balanced composition following the rule of thirds",
        "a centered, symmetrical composition",
        "a wide view with generous negative space around the main subject",
        "a close, intimate framing of the main subject",
        "a slightly low angle with a clean, uncluttered background",
    ),
}

_LIGHTING: dict[str, tuple[str, ...]] = {
    "natural": (
        "low golden-hour sunlight that casts long, warm shadows",
        "soft, diffused overcast daylight with gentle shadows",
        "dramatic side light with deep shadows and bright highlights",
        "cool blue-hour twilight with a few warm lights glowing",
        "backlight that outlines the edges with a bright rim",
        "misty morning light with a soft haze in the air",
        "clear midday light with crisp, defined shadows",
    ),
    "indoor": (
        "soft window light falling from one side",
        "warm lamplight with deep, cozy shadows",
        "moody low-key light from a single warm source",
        "bright, even daylight filling the room",
        "a large softbox and a subtle rim light, as in a studio",
    ),
    "painterly": (
        "warm, glowing light with soft painterly shadows",
        "luminous late-afternoon light and long violet shadows",
        "cool moonlight with small warm accents of lantern light",
        "bright, clear daylight with crisp shadows",
        "soft, hazy light that melts the distance into the sky",
    ),
    "painterly indoor": (
        "warm, glowing light with soft painterly shadows",
        "a pool of warm lamplight surrounded by cool, deep shadows",
        "gentle window light that picks out a few bright highlights",
        "soft candlelight with rich, glowing color",
    ),
}

_MEDIUM: dict[str, tuple[str, ...]] = {
    "photo": (
        "a high-resolution photograph taken with a full-frame camera and a 50mm lens, with natural color grading",
        "a professional photograph with shallow depth of field and a softly blurred background",
        "a 35mm film photograph with fine grain and rich, natural colors",
        "an editorial photograph with true-to-life colors and crisp focus",
    ),
    "painting": (
        "a detailed oil painting with visible, confident brushstrokes and rich layered color",
        "a delicate watercolor painting with soft washes and crisp edges on textured paper",
        "a gouache painting with flat, matte shapes of color and fine detail",
    ),
    "illustration": (
        "a clean digital illustration with precise linework and soft cel shading",
        "a storybook illustration with warm colors and gentle paper textures",
        "a detailed ink drawing with fine cross-hatching and light washes of color",
        "an anime-style illustration with crisp outlines and luminous colors",
    ),
    "render": (
        "a polished 3D render with physically based materials and soft global illumination",
        "a stylized 3D render with smooth, clay-like shapes and soft shadows",
        "a detailed isometric 3D scene with tidy geometry and soft ambient occlusion",
    ),
}
# Medium phrases that suit a subject better than the generic photo ones.
_PHOTO_BY_SUBJECT: dict[str, tuple[str, ...]] = {
    "animal": ("a wildlife photograph taken with a long telephoto lens, with the background melting into soft blur",),
    "landscape": ("a landscape photograph with deep focus from the foreground to the horizon",),
    "food": ("an appetizing food photograph with shallow depth of field",),
    "object": ("a commercial product photograph with crisp focus and clean reflections",),
    "person": ("a portrait photograph taken with an 85mm lens, with natural skin tones and soft background blur",),
    "architecture": ("an architectural photograph with straight verticals and crisp detail",),
}
# How often each medium is picked when the prompt names none, by subject (weights, in _MEDIUM's order).
_MEDIUM_WEIGHTS: dict[str, tuple[int, int, int, int]] = {
    "person": (5, 2, 2, 1),
    "animal": (5, 2, 2, 1),
    "food": (7, 1, 1, 1),
    "object": (5, 1, 1, 3),
    "architecture": (5, 2, 2, 1),
    "landscape": (5, 3, 1, 1),
    "generic": (4, 2, 2, 2),
}

_COLOURS = (
    "muted earthy browns and soft sage greens",
    "warm ambers, rust and cream",
    "cool teals and slate blues with one warm accent",
    "rich, saturated jewel tones",
    "soft pastels with gentle contrast",
    "natural and true to life, with deep blacks and clean whites",
    "warm and golden, with soft contrast",
)

_DETAILS: dict[str, tuple[str, ...]] = {
    "person": (
        "Fine detail shows in the skin texture, the hair and the folds of the clothing.",
        "The eyes are in crisp focus and the expression is natural and relaxed.",
        "The clothing has realistic fabric texture and carefully rendered stitching.",
    ),
    "animal": (
        "Every strand of fur and feather is rendered in fine detail.",
        "The eyes are sharp and catch a small highlight.",
        "The pose is natural and alert, with realistic anatomy.",
    ),
    "food": (
        "The textures look fresh and tactile, with small crumbs and glistening highlights.",
        "The ingredients look fresh and clearly recognizable, arranged with care.",
    ),
    "object": (
        "Edges are crisp, and the materials show their true texture and subtle reflections.",
        "Small details such as seams, screws and engravings are clearly visible.",
    ),
    "architecture": (
        "Intricate architectural detail and weathered textures are visible on every surface.",
        "The scale is clear from small details such as windows, doors and signs.",
    ),
    "landscape": (
        "A faint atmospheric haze gives depth to the distance.",
        "Rocks, grass and water show rich, natural texture.",
        "The sky has layered clouds with subtle gradients of color.",
    ),
    "generic": (
        "The image has intricate detail and clean, sharp focus.",
        "Textures are rich and tactile, with a clear sense of depth.",
    ),
}

_INDOOR_KINDS = {"food", "object"}
_INDOOR_WORDS = ("room", "interior", "kitchen", "library", "cafe", "café", "bar", "restaurant", "shop", "bedroom",
                 "hall", "studio", "office", "indoors", "inside")
_WORD = re.compile(r"[a-z0-9']+(?:-[a-z0-9']+)*")


def _mentions(text: str, words: Sequence[str]) -> bool:
    """True if any word or phrase occurs in ``text`` (lower case) as whole words."""
    tokens = set(_WORD.findall(text))
    return any((w in tokens) if " " not in w and "/" not in w else (w in text) for w in words)


def _subject_kind(text: str) -> str:
    tokens = set(_WORD.findall(text))
    for kind, words in _SUBJECT_WORDS.items():
        if tokens.intersection(words):
            return kind
    return "generic"


def _named_medium(text: str) -> str | None:
    for medium, words in _MEDIUM_WORDS.items():
        if _mentions(text, words):
            return medium
    return None


def _as_sentence(prompt: str) -> str:
    """The user's words as the opening sentence: first letter capitalised, a full stop if it had no end mark."""
    text = " ".join(prompt.split())
    if text and text[0].isalpha() and text[0].islower():
        text = text[0].upper() + text[1:]
    if text and text[-1] not in ".!?\"'”)":
        text = text.rstrip(",;:") + "."
    return text


def template_expand(prompt: str, seed: int) -> str:
    """Expand ``prompt`` with cues for the facets it leaves open; the same (prompt, seed) gives the same text.

    Facets, in this order: composition, lighting, medium, colours, detail. A facet the prompt already names
    (e.g. "watercolor", "backlit", "close-up", two colour words) is not added; the medium the prompt names, or
    the one drawn for it, decides whether lighting reads photographic or painterly. Prompts of
    ``DETAILED_WORDS`` words or more come back with only their whitespace normalised.
    """
    text = " ".join(prompt.split())
    if not text:
        return ""
    words = len(text.split())
    if words >= DETAILED_WORDS:
        return text
    lower = text.lower()
    # the prompt joins the seed so one seed does not pick the same slots for every prompt; str seeds are hashed
    # with SHA-512 by random (not by hash()), so this is stable across runs and PYTHONHASHSEED
    rng = random.Random(f"{seed}\x00{text}")
    kind = _subject_kind(lower)
    named = _named_medium(lower)
    medium = named or rng.choices(list(_MEDIUM), weights=_MEDIUM_WEIGHTS[kind])[0]
    short = words < SHORT_WORDS
    parts = [_as_sentence(text)]

    if not _mentions(lower, _FRAMING_WORDS):
        form = rng.choice(("Framed as {}.", "Shown in {}.", "Seen in {}."))
        parts.append(form.format(rng.choice(_COMPOSITION[kind])))
    if not _mentions(lower, _LIGHT_WORDS):
        indoor = kind in _INDOOR_KINDS or _mentions(lower, _INDOOR_WORDS)
        if medium in ("painting", "illustration"):
            light_kind = "painterly indoor" if indoor else "painterly"
        else:
            light_kind = "indoor" if indoor else "natural"
        form = rng.choice(("Lit by {}.", "The scene is lit by {}."))
        parts.append(form.format(rng.choice(_LIGHTING[light_kind])))
    if named is None:
        choices = _MEDIUM[medium]
        if medium == "photo":
            choices = choices + _PHOTO_BY_SUBJECT.get(kind, ())
        parts.append(f"The image is {rng.choice(choices)}.")
    if short:
        colour_words = sum(_mentions(lower, (w,)) for w in _COLOUR_WORDS)
        if colour_words < 2 and rng.random() < 0.7:
            parts.append(f"The colors are {rng.choice(_COLOURS)}.")
        parts.append(rng.choice(_DETAILS[kind]))
    return " ".join(parts)
