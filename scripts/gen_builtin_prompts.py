"""Generate lem's built-in prompt set, lem/prompts/data/builtin_prompts.jsonl.

Every prompt is built from the templates and the original passages in this file (all written for lem), with no
randomness and no network, so running the script reproduces the committed file byte for byte:

    python scripts/gen_builtin_prompts.py [--out PATH]

Each output line is `{"id": "<category>-<nnn>", "text": ..., "category": ...}`, in category order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "lem" / "prompts" / "data" / "builtin_prompts.jsonl"


def _clean(text: str) -> str:
    """Fold each blank-line-separated paragraph of `text` onto one line; paragraphs stay separated by a blank line."""
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in text.strip().split("\n\n"))


QUESTIONS = [
    "What causes the seasons on Earth?",
    "Why is the sky blue?",
    "How many bones are in the adult human body?",
    "What is the difference between weather and climate?",
    "Who invented the movable-type printing press in Europe, and roughly when?",
    "What does a CPU cache do?",
    "Is a tomato a fruit or a vegetable?",
    "How do bees make honey?",
    "Why does water boil at a lower temperature at high altitude?",
    "Why do cats purr?",
    "What is compound interest?",
    "How far away is the Moon?",
    "What is the capital of Australia?",
    "Why does ice float on water?",
    "What is photosynthesis?",
    "How does a refrigerator keep food cold?",
    "What is the difference between a virus and a bacterium?",
    "Why do we have leap years?",
    "What is an API?",
    "How long does light from the Sun take to reach Earth?",
    "What are the primary colours of light?",
    "Why do onions make people cry?",
    "What is inflation in economics?",
    "How do noise-cancelling headphones work?",
    "What is the largest desert in the world?",
    "What is a prime number?",
    "Why do leaves change colour in autumn?",
    "What does DNS stand for, and what does it do?",
    "What is the tallest mountain in the solar system?",
    "Why is sleep important for health?",
    "What is the difference between RAM and disk storage?",
    "How does GPS work out where you are?",
    "Why do some metals rust while others do not?",
    "What is a black hole?",
    "Which language has the most native speakers?",
    "How do tides work?",
    "What is machine learning, in one sentence?",
    "Why is the ocean salty?",
    "What is the speed of sound in air?",
    "How do plants know which way is up?",
    "What does a tokenizer do in a language model?",
    "Why are flamingos pink?",
    "What is the Pythagorean theorem?",
    "How does a moving bicycle stay upright?",
    "What is the difference between a lake and a pond?",
    "Why do we yawn?",
    "What is an electric current?",
    "How does soap remove grease?",
    "Should I learn Python or JavaScript first?",
    "Is it better to rent or buy a home? Give both sides briefly.",
    "What is a good way to start learning to draw?",
    "How can I sleep better when travelling across time zones?",
    "What should I pack for a two-day hike in autumn?",
    "How do I politely decline a meeting invitation?",
    "What are some tips for keeping houseplants alive?",
    "Hi there, how are you today?",
    "Can you suggest a strategy for learning vocabulary in a new language?",
    "What is the best way to store fresh herbs?",
    "Why do many programmers prefer dark themes in their editors?",
    "What happens to a letter after I put it in a postbox?",
]

EXPLAIN_TOPICS = [
    "how a transistor works",
    "recursion in programming",
    "supply and demand",
    "the greenhouse effect",
    "how public-key cryptography works",
    "what a database index is",
    "why the Roman Empire split in two",
    "how the heart pumps blood",
    "gradient descent",
    "the difference between TCP and UDP",
    "how a bill becomes law in a parliamentary system",
    "why compound interest matters for saving",
    "how earthquakes happen",
    "what entropy means",
    "how a search engine ranks pages",
    "plate tectonics",
    "the placebo effect",
    "how an electric motor works",
    "what version control is and why teams use it",
    "how memory allocation works in a program",
    "what inflation does to savings",
    "the water cycle",
    "why the Moon has phases",
    "how a neural network learns",
    "what a hash function is",
    "containerisation with tools like Docker",
    "how antibiotics work and why resistance develops",
    "castling in chess",
    "how an orchestra conductor keeps the players together",
    "what a mortgage is",
    "why photographs taken in low light look grainy",
    "the difference between latency and throughput",
    "what an operating system kernel does",
    "how solar panels produce electricity",
    "why bread goes stale",
    "how a pin tumbler lock works",
    "how rechargeable batteries store energy",
    "floating-point rounding error",
    "how sound travels through air",
    "what big-O notation measures",
]
EXPLAIN_AUDIENCES = [
    "a ten-year-old",
    "a first-year university student",
    "a busy manager with no technical background",
    "an experienced software engineer",
]
EXPLAIN_FORMATS = [
    "in one paragraph",
    "in three short paragraphs",
    "using an everyday analogy",
    "in under 100 words",
    "step by step",
]

CODE_TASKS = [
    "Write a Python function that checks whether a string is a palindrome, ignoring case and punctuation.",
    "Write a JavaScript function that debounces another function by a given number of milliseconds.",
    "Write a SQL query that returns the five customers with the highest total order value, given tables "
    "customers(id, name) and orders(id, customer_id, amount).",
    "Implement binary search in Rust over a sorted slice of i32, returning Option<usize>.",
    "Write a Bash script that renames every .jpeg file in a directory to .jpg.",
    "Write a Python class for a fixed-size ring buffer with push and pop methods.",
    "In Go, write a function that counts word frequencies in a string and returns a map.",
    "Write a regular expression that matches dates like 2024-03-15 and explain each part of it.",
    'Write a Python script that reads a CSV file and prints the average of its "price" column.',
    "Write a C function that reverses a singly linked list in place.",
    "Implement FizzBuzz in Haskell.",
    "Write a TypeScript type for a user profile with some optional fields, and a function that validates one.",
    "Write a Python generator that yields the Fibonacci numbers forever.",
    "Write pytest unit tests for a function add(a, b) that adds two numbers.",
    "Convert this Python loop into a list comprehension:\n\n```python\nresult = []\nfor x in range(20):\n"
    "    if x % 3 == 0:\n        result.append(x * x)\n```",
    "Find the bug in this function and fix it:\n\n```python\ndef average(xs):\n    total = 0\n    for x in xs:\n"
    "        total += x\n    return total / len(xs) - 1\n```",
    "Explain what this SQL query does: SELECT department, COUNT(*) FROM employees GROUP BY department "
    "HAVING COUNT(*) > 10;",
    "Write a Dockerfile for a small Flask app that listens on port 8000.",
    "Write a Python function that merges two sorted lists into one sorted list without calling sort().",
    'Write a JavaScript snippet that fetches JSON from a URL and logs its "name" field, with error handling.',
    "Write a Java method that returns the n-th prime number.",
    "Implement a least-recently-used cache in Python whose get and put both run in O(1).",
    'Write a Rust function that parses "key=value" lines into a HashMap<String, String>.',
    "Explain the difference between == and is in Python, with an example.",
    "Write a Makefile with build, test and clean targets for a small C project.",
    "Write a Python decorator that retries a function up to three times when it raises an exception.",
    "Refactor this function to be more readable:\n\n```python\ndef f(a):\n    r=[]\n    for i in range(len(a)):\n"
    "        if a[i]>0 and a[i]%2==0: r.append(a[i]*2)\n    return r\n```",
    "Write a SQL schema for a small library with books, members and loans.",
    "Write a shell one-liner that lists the ten largest files under the current directory.",
    "Write a Python function that flattens an arbitrarily nested list.",
    "In C++, write a template function that returns the largest element of a std::vector.",
    "What does the regular expression ^[A-Z]{2}\\d{4}$ match? Give two examples that match and two that do not.",
    "Write a Kotlin data class for a 2D point with a function that computes the distance to another point.",
    "Write a Python async function that downloads three URLs concurrently with asyncio.",
    "Write a function that converts Roman numerals to integers, in a language of your choice.",
    "Explain why this JavaScript prints 3 three times, and how to fix it:\n\n```javascript\n"
    "for (var i = 0; i < 3; i++) {\n  setTimeout(() => console.log(i), 0);\n}\n```",
    "Write a Python function that checks an email address with a simple regular expression, and list its limitations.",
    'Write Go code for an HTTP server that answers "ok" on /health.',
    "Implement quicksort in Python and state its average and worst-case time complexity.",
    "Show the git commands to create a branch, commit a change and push the branch.",
    "Write a Python function that computes the Levenshtein distance between two strings.",
    "Write a SQL query that finds duplicate email addresses in a users table.",
    "Write a Python dataclass for an invoice with line items and a method that returns the total.",
    "Write a Bash function that prints a message in red when the previous command failed.",
    "Write a Ruby method that groups an array of words by their first letter.",
    "Write a Python function that splits a list into chunks of size n.",
    "Explain what a race condition is and show a short Python threading example that has one.",
    "Write a Swift struct for a temperature that converts between Celsius and Fahrenheit.",
    'Write a JSON Schema for an object with a required string "title" and an optional array of strings "tags".',
    "Write a Python script that prints a histogram of line lengths in a text file, using only the standard library.",
]

TRANSLATE_SENTENCES = [
    "The train to the coast leaves at half past eight.",
    "Could you please close the window? It is getting cold.",
    "I have been learning to play the cello for two years.",
    "The museum is closed on Mondays but open late on Thursdays.",
    "We need three more chairs for the meeting tomorrow.",
    "My sister works as a nurse in a small hospital near the river.",
    "Please remember to water the plants while I am away.",
    "The soup needs a little more salt and a squeeze of lemon.",
    "Our flight was delayed because of fog.",
    "He forgot his umbrella, so he arrived completely soaked.",
    "Where is the nearest pharmacy?",
    "The results of the experiment were surprising.",
    "Thank you for your help; I could not have done it without you.",
    "The children built a snowman in the park.",
    "This software update fixes several security problems.",
    "I would like a table for four by the window, please.",
    "The library has a new collection of old maps.",
    "It took us six hours to climb to the top of the hill.",
    "Please send me the report by Friday afternoon.",
    "The bakery on the corner sells the best bread in town.",
    "She wrote a letter to her grandmother every week.",
    "The meeting has been moved to the small conference room.",
    "Turn left after the bridge and the hotel is on your right.",
    "We are planning a picnic if the weather stays dry.",
]
TRANSLATE_LANGUAGES = ["French", "Spanish", "German", "Italian", "Portuguese", "Japanese"]
TRANSLATE_TEMPLATES = [
    "Translate into {language}: {sentence}",
    'How would you say "{sentence}" in {language}?',
    "Translate the following sentence into {language}, keeping the tone informal: {sentence}",
]
TO_ENGLISH = [
    ("Spanish", "Mañana vamos a visitar a mis abuelos en el pueblo."),
    ("French", "Je voudrais réserver une chambre pour deux nuits."),
    ("German", "Der Zug hat zwanzig Minuten Verspätung."),
    ("Italian", "Il negozio apre alle nove e chiude alle sette."),
    ("Portuguese", "Podes ajudar-me a carregar estas caixas?"),
    ("Spanish", "El concierto fue cancelado por la lluvia."),
]
JARGON = [
    "Per our SLA, P1 incidents require an RCA within 48 hours of mitigation.",
    "The patient presented with acute dyspnoea and was administered supplemental oxygen.",
    "The party of the first part shall indemnify the party of the second part against all claims arising hereunder.",
    "We are deprecating the v1 endpoint; please migrate to v2 before EOL.",
    "The fund's NAV declined owing to mark-to-market losses on its duration exposure.",
    "Latency regressed at p99 after the cache eviction policy change.",
]

LISTS = [
    "List five ways to reduce food waste at home.",
    "List ten common houseplants that tolerate low light.",
    "Give me seven questions a candidate could ask at the end of a job interview.",
    "List the planets of the solar system in order from the Sun.",
    "List six renewable energy sources with one sentence on each.",
    "Name eight board games suitable for a family with young children.",
    "List the steps to fix a flat bicycle tyre.",
    "List five common logical fallacies with a short example of each.",
    "List ten vegetables that grow well in containers.",
    "List the main parts of an animal cell and what each one does.",
    "List five things to check before publishing a blog post.",
    "List eight useful keyboard shortcuts for a text editor.",
    "List the days of the week in French.",
    "Write a packing list for a weekend camping trip.",
    "List five advantages and five disadvantages of electric cars.",
    "List the ingredients for a basic pancake batter.",
    "List six ways to make a presentation more engaging.",
    "List ten verbs that describe different ways of walking.",
    "List the steps of the scientific method.",
    "List seven common HTTP status codes and what they mean.",
    "List five exercises that need no equipment.",
    "List some ideas for a rainy afternoon with children.",
    "List the differences between a list and a tuple in Python.",
    'List nine words that rhyme with "light".',
    "List the phases of the Moon in order.",
    "List ten questions to ask when choosing a new laptop.",
    "List five inventions that changed everyday life, with a sentence on each.",
    "List the continents by area, largest first.",
    "List six tips for writing clear emails.",
    "List four ways to back up important files.",
]

CREATIVE_FORMS = [
    "Write a haiku about {subject}.",
    "Write a limerick about {subject}.",
    "Write a four-line poem about {subject}.",
    "Write the opening paragraph of a mystery story that involves {subject}.",
    "Write a short story of about 200 words about {subject}.",
    "Write a dialogue between two friends who disagree about {subject}.",
    "Write a letter from the point of view of {subject}.",
    "Write a diary entry by someone who has just encountered {subject}.",
    "Write the chorus of a folk song about {subject}.",
]
CREATIVE_SUBJECTS = [
    "a lighthouse in winter",
    "a lost umbrella",
    "the first day of spring",
    "a robot learning to cook",
    "an old bicycle",
    "a city at three in the morning",
    "a cat who thinks it is a dog",
    "the smell of rain",
    "a library book returned forty years late",
    "a snail race",
    "a kite caught in a tree",
    "the last train home",
    "a grandmother's recipe box",
    "a very small dragon",
    "a market on a foggy morning",
    "a broken clock",
    "a pair of mismatched socks",
    "an astronaut's first night in orbit",
    "a village with no roads",
    "a message in a bottle",
    "the noise of a busy kitchen",
    "a tree that has seen three centuries",
    "a jar of buttons",
    "a quiet museum after closing time",
    "a fox crossing a motorway bridge",
    "a teacher on the last day of term",
    "a power cut during a storm",
    "a map with one island missing",
    "a bus driver who sings",
    "the first snowfall of the year",
    "a lighthouse keeper's cat",
    "a violin found in an attic",
    "a garden gnome that moves at night",
    "a long queue at the post office",
    "a ship in a bottle",
    "the moment before a race starts",
]

REVIEWS = [
    "The battery lasts all day and the screen is bright, but the speakers are tinny.",
    "Absolutely loved the food; the staff were friendly and the prices fair.",
    "Arrived broken and customer service never replied to my emails.",
    "It does the job. Nothing special, nothing terrible.",
    "The hotel room was spotless, though the street noise kept us awake.",
    "Best hiking boots I have owned. Comfortable from the first day.",
    "The instructions were confusing and two screws were missing.",
    "A charming little film with a weak ending.",
    "I returned it after a week; the zip kept getting stuck.",
    "Fast delivery, well packaged, exactly as described.",
    "The app crashes every time I try to upload a photo.",
    "Great coffee, terrible parking.",
    "My kids play with this puzzle every evening. Worth every penny.",
    "The course started strong but the last three modules felt rushed.",
    "Not worth the price. The fabric pilled after one wash.",
]
HEADLINES = [
    "Local council approves new budget after late-night vote",
    "Underdog team wins regional cup on penalties",
    "Researchers map ocean floor vents teeming with unknown microbes",
    "Regional bakery chain reports record quarterly profits",
    "Sculpture festival draws thousands to riverside park",
    "Parliament debates lowering the voting age",
    "Sprinter breaks national record at indoor championship",
    "New telescope images reveal a distant galaxy cluster",
    "Shipping costs fall as port congestion eases",
    "Debut novel wins national literary prize",
    "Minister resigns over procurement dispute",
    "Twelve-year-old chess player draws with grandmaster",
    "Study finds city trees lower summer temperatures",
    "Startup raises funding to build cheaper heat pumps",
    "Orchestra announces free summer concerts in the park",
]

#: (passage, a question it answers). Original texts written for lem; places, people and figures are invented.
PASSAGES = [
    (
        """
Notice to all plot holders at the Elm Street Community Garden: from the first of June, the shared hoses will only be
available between 6 and 9 in the morning and between 6 and 9 in the evening. This change is to reduce water lost to
evaporation in the midday heat. The rain barrels remain free to use at any time. Please coil the hoses after use.
""",
        "During which hours can the shared hoses be used from June onwards?",
    ),
    (
        """
The Lumen Fold is a bicycle lamp that folds flat enough to slip into a jacket pocket. It clips to handlebars from 22 to
35 millimetres wide, offers three brightness levels and a slow-flash mode, and charges over USB-C in about two hours.
On its lowest setting the battery lasts roughly fourteen hours. The housing is rated for heavy rain but not for
submersion.
""",
        "How long does the battery last on the lowest setting, and can the lamp be submerged?",
    ),
    (
        """
Hi Priya, I am sorry to do this at short notice, but I need to move our Thursday planning meeting. A supplier visit
has been booked for the same afternoon and I have to be there. Would Friday at 10:30 work for you instead? If not, I am
free most of Monday. I will bring the revised budget figures either way, so we should not lose any time. Thanks for
understanding, Tom
""",
        "Why does Tom want to move the meeting, and what alternatives does he offer?",
    ),
    (
        """
Station 14, 07:00 reading. Air temperature 3.2 °C, falling since midnight. Relative humidity 91 percent. Wind from
the north-east at 18 km/h, gusting to 31. Overnight rainfall 6.4 mm, most of it before 02:00. Pressure 1004 hPa and
still dropping. Light frost on exposed surfaces at the lower site. Anemometer bearing noisy again; maintenance
requested.
""",
        "What was the overnight rainfall, and which piece of equipment needs maintenance?",
    ),
    (
        """
Bowl with wave pattern, glazed earthenware. Made in a small workshop on the northern coast about two hundred years
ago, this bowl was used for serving fish stew at family gatherings. The blue waves were painted freehand, which is why
no two repeats are quite the same. A repair with metal staples, visible near the rim, shows that its owners valued it
enough to mend it rather than replace it.
""",
        "What does the repair near the rim suggest about the bowl's owners?",
    ),
    (
        """
A sourdough starter is a simple mixture of flour and water that has been colonised by wild yeasts and lactic acid
bacteria. When flour and water are first combined, many different microbes begin to feed on the sugars released from
the starch. Over the following days, regular feeding with fresh flour and water favours the organisms that tolerate
acidity and grow quickly in that environment, and the culture settles into a stable community. The yeasts produce
carbon dioxide, which makes the dough rise, while the bacteria produce lactic and acetic acids, which give the bread
its sour taste and help it keep for longer. A healthy starter roughly doubles in volume a few hours after feeding and
smells pleasantly tangy. If it is left unfed for too long it becomes sluggish and may develop a layer of grey liquid,
which can usually be poured off before the starter is refreshed.
""",
        "What do the yeasts and the bacteria each contribute to the bread?",
    ),
    (
        """
Sprint 23 retrospective, attended by Ana, Ben, Chloe, Dev and Ezra. What went well: the new code review checklist cut
the average review time from two days to just under one, and Wednesday's deployment went out without a rollback for
the first time in a month. Chloe's work on the test fixtures made the integration suite about forty percent faster.
What did not go well: two stories were pulled into the sprint halfway through without discussion, and the team felt
this made the sprint goal unclear. The staging environment was down for most of Tuesday because a certificate
expired. Actions: Ben will add certificate expiry checks to the monitoring dashboard by next Friday. Ana will raise
the mid-sprint scope changes with the product owner and propose that any new work goes through the Monday planning
session. The team agreed to keep the review checklist and revisit it in two sprints.
""",
        "Who is responsible for the certificate expiry checks, and by when?",
    ),
    (
        """
Before the stone bridge was built, the only way across the river at Harlow was a flat-bottomed ferry pulled along a
chain. The ferry could carry a cart and two horses, or about thirty people standing, and the crossing took roughly ten
minutes when the current was calm. The ferryman lived in a small cottage on the eastern bank and was paid partly in
coins and partly in goods, such as eggs, firewood and, according to one account, a violin. In the spring floods the
ferry often could not run for days, and farmers on the western side had to take their produce to a market twenty
kilometres downstream. Complaints about these interruptions eventually persuaded the town council to raise money for
a bridge. Construction took four summers, and when the bridge opened the ferry was retired. Its chain was cut into
lengths and sold, and one piece still hangs above the door of the town's oldest inn.
""",
        "Why did the town decide to build a bridge?",
    ),
    (
        """
A heat pump does not create heat so much as move it. Inside the unit, a refrigerant circulates through a closed loop.
On the outdoor side, the refrigerant is allowed to expand and become very cold, colder than the outside air, so it
absorbs heat from that air even on a chilly day. A compressor then squeezes the refrigerant gas, which raises its
temperature well above that of the room. The hot refrigerant passes through a heat exchanger indoors, where it gives up
its heat to the water or air that warms the house. Having cooled, it flows back through an expansion valve and the
cycle repeats. Because the electricity is used mainly to run the compressor and fans rather than to generate heat
directly, a heat pump can deliver two to four units of heat for every unit of electrical energy it consumes. Its
efficiency falls as the temperature difference between outside and inside grows.
""",
        "Why can a heat pump deliver more heat energy than the electrical energy it uses?",
    ),
    (
        """
Dear Customer Services, I am writing about order number 58213, a dining table and six chairs that I paid for in full
on the third of March. At the time of purchase I was told that delivery would take three to four weeks. It has now been
nine weeks. I have phoned your helpline four times. On each occasion I was given a new delivery date, and on each of
those dates nobody arrived and nobody called to explain. I took a day off work for two of these appointments. I would
like you to confirm a firm delivery date within the next seven days. If you cannot do so, I expect a full refund, and I
would also ask you to consider compensating me for the two days of leave I lost. I have kept records of all my calls,
including the dates and the names of the staff I spoke to. Yours faithfully, Margaret Osei
""",
        "What does the writer ask for, and what does she expect if the company cannot provide it?",
    ),
    (
        """
Title: CSV export silently drops rows with non-ASCII customer names. Steps to reproduce: create a customer named Zoë
Müller, add any order for that customer, then open Reports, choose Orders, and click Export to CSV. Expected result:
the exported file contains one row per order, including the order for Zoë Müller. Actual result: that row is missing,
and no error or warning is shown. The total at the bottom of the report still counts the order, so the numbers in the
file do not add up. Environment: version 4.2.1, tested on two machines with the same result. Notes: rows whose names
use only ASCII letters export correctly. The export log shows a UnicodeEncodeError being caught and ignored in the row
writer, which suggests the file is opened with a legacy encoding instead of UTF-8.
""",
        "What is the likely cause of the bug, according to the notes?",
    ),
    (
        """
Field notes, 14 November, reed beds south of the reservoir. Arrived at 15:40, about forty minutes before sunset. Sky
clear, light westerly wind. The first small groups of starlings came in low from the east at about 15:55, twenty or
thirty birds at a time. By 16:10 several thousand had gathered and the flock began to wheel above the reeds,
stretching into long ribbons and then folding back into a dense ball. Twice a sparrowhawk cut through the edge of the
flock, and each time the birds nearest to it surged away in a wave that rippled across the whole group within a
second or two. At 16:28 the flock dropped into the reeds in three or four steep pours, and the noise of chattering
carried across the water for several minutes afterwards. Estimated numbers: between eight and twelve thousand. Fewer
than last week, possibly because of the milder weather.
""",
        "What did the birds do when the sparrowhawk approached?",
    ),
    (
        """
Laptop loans are available to any library member aged sixteen or over who has held a card for at least one month.
Laptops may be borrowed for up to seven days and renewed once, provided nobody else has reserved one. Each loan
requires a signed agreement, and the borrower is responsible for the device until it is handed back to a member of
staff; laptops must not be left in the book return box. Late returns are charged at two pounds per day, up to a maximum
of twenty pounds, after which the borrower's card is suspended until the laptop is returned. Damage should be reported
immediately. Accidental damage is not charged for the first time it occurs, but repeated damage may lead to the loss of
borrowing rights. All files saved on a laptop are deleted automatically when it is returned.
""",
        "What happens if a laptop is returned very late?",
    ),
    (
        """
The keeper had been told in October that the light would be automated by spring, and for a while he pretended it made
no difference to him. He went on climbing the hundred and twelve steps every evening, cleaning the great lens with the
soft cloths his predecessor had left in a tin, and writing the weather in the log in the same careful capitals. But as
the days shortened he found himself lingering. He would stand at the gallery rail long after the lamp was lit,
watching the beam sweep over the water and pick out the white edges of the waves.

In December a storm kept the supply boat away for eleven days. He rationed the coffee, then the tinned peaches, and
finally read every book in the cottage twice. On the ninth night a fishing boat came too close to the reef, its engine
failing, and he spent an hour on the radio talking to a frightened young skipper, guiding him along the safe channel
one buoy at a time. When the boat finally reached the harbour lights, the skipper said, his voice cracking, that he
would buy the keeper a drink if he ever came ashore. The keeper laughed and said he might take him up on that sooner
than expected.

In March the engineers arrived with crates of equipment and a cheerful manner that he tried not to resent. They were
done in four days. On his last evening he climbed the stairs out of habit, found there was nothing left for him to do,
and sat for a while beside the new lamp, listening to it hum. Then he went down, packed his logbooks into a box, and
left the tin of cloths on the shelf for nobody in particular.
""",
        "How did the keeper help the fishing boat during the storm?",
    ),
    (
        """
For small teams, the question of whether to work remotely is rarely about productivity alone. Studies disagree about
whether people get more done at home, and the answer probably depends on the kind of work and the kind of person. What
changes more reliably is how information moves. In an office, a great deal of knowledge spreads by accident: someone
overhears a conversation about a customer problem, or notices that a colleague looks stuck and offers help. Remote
teams lose most of this background channel, and unless they replace it deliberately, newer members in particular can
feel isolated and learn more slowly.

On the other hand, remote work forces teams to write things down. Decisions that would have been made in a corridor
end up in a document or a chat thread, where people who were not present can read them later. Over time this can
produce a clearer record of why things are the way they are, which is valuable when people leave or when a decision
needs to be revisited. Remote work also widens the pool of people a small company can hire, which may matter more than
anything else for a business outside a large city.

The costs are real but manageable. Teams that do well remotely tend to invest in a few habits: regular short calls,
written summaries of every meeting, a shared place for questions where no question is considered too small, and
occasional gatherings in person. None of these is expensive. The teams that struggle are often those that moved online
without changing anything else, expecting the office's informal channels to survive on their own.
""",
        "According to the text, what does an office provide that remote teams tend to lose?",
    ),
    (
        """
Summary of the twelve-month shared e-scooter pilot. The pilot placed 600 scooters in the central and northern
districts, run by two operators under a single permit. Over the year, riders made about 410,000 trips, with a median
length of 2.1 kilometres and a median duration of eleven minutes. Use peaked on weekday evenings and on dry weekends,
and fell by more than half in the coldest two months.

A survey of 1,800 riders found that roughly a third of trips replaced a car or taxi journey, a third replaced walking,
and the rest replaced bus trips or cycling, or would not have been made at all. This suggests that the environmental
benefit is smaller than the raw trip count implies, since walking trips have no emissions to save.

Safety results were mixed. There were 47 reported injuries involving scooter riders, nine of them serious. Most serious
injuries happened at night and involved riders who were not wearing helmets. Complaints from residents were mainly
about scooters left blocking pavements; these fell by about sixty percent after mandatory parking zones were
introduced in month five.

The committee recommends continuing the scheme for a further two years with the following changes: extending
mandatory parking zones to all districts, lowering the maximum speed to 15 km/h in streets with heavy foot traffic,
requiring operators to share anonymised trip data monthly, and funding a helmet campaign aimed at evening riders.
""",
        "What effect did the mandatory parking zones have on residents' complaints?",
    ),
    (
        """
The immune system learns from experience. When a new pathogen enters the body, specialised cells take fragments of it
and present them to white blood cells called lymphocytes. Among the vast number of lymphocytes, a few happen to carry
receptors that fit those fragments well. These cells multiply, and some of them become factories for antibodies,
proteins that stick to the pathogen and mark it for destruction. This first response takes time, often a week or
more, which is why people can become quite ill during a first infection.

After the infection is cleared, a smaller population of memory cells remains. If the same pathogen appears again,
these cells recognise it quickly and mount a faster, stronger response, often before any symptoms develop.

A vaccine takes advantage of this memory without requiring the person to suffer the illness first. It presents the
immune system with something that resembles the pathogen but cannot cause the disease: an inactivated virus, a
harmless piece of one of its proteins, or instructions that let the body's own cells make such a piece for a short
time. The immune system responds as if it had met the real thing, and memory cells form. Some vaccines need booster
doses because memory fades, or because the pathogen changes over time so that the old memory fits it less well. Mild
side effects such as a sore arm or a day of tiredness are signs of the immune system responding, not of infection.
""",
        "Why do some vaccines need booster doses?",
    ),
    (
        """
On the island of Vessa, fishing was for generations an individual affair. Each family owned its own boat, sold its
own catch to visiting traders, and competed with its neighbours for the best grounds. In poor years the traders set
the prices, and families who could not afford to wait for a better offer sold cheaply.

After a particularly bad season, eleven households agreed to try something different. They pooled their catch, hired
one of their number to negotiate with buyers on the mainland, and built a shared cold store so that fish could be held
back when prices were low. Profits were divided according to the weight each boat landed, with a small share kept
back to maintain the store and to help members whose boats were damaged.

The first years were difficult. Some members suspected others of landing undersized fish, and the cold store broke
down twice. The group responded by agreeing on written rules, including minimum sizes and closed seasons for the
spawning grounds, and by electing a committee whose members changed every two years.

Within a decade most households on the island had joined. Average incomes rose, but members often said the more
important change was that the fishing grounds recovered. Because the rules were made and enforced by the people who
used the grounds, they were followed more closely than any regulation imposed from outside. The island's experience is
now used as a teaching example of how a community can manage a shared resource without either privatising it or
handing it to a distant authority.
""",
        "How were profits divided among the members of the cooperative?",
    ),
    (
        """
A hash table stores key-value pairs in an array and uses a hash function to decide where each pair should go. The hash
function turns a key, such as a string, into a number, and that number modulo the size of the array gives a slot
index. Looking up a key means hashing it again and going straight to the right slot, which is why hash tables offer
constant-time lookups on average.

The difficulty is that two different keys can map to the same slot. This is called a collision, and it is unavoidable
once there are more possible keys than slots. There are two main strategies for handling collisions. In separate
chaining, each slot holds a small list of entries, and colliding keys are simply added to the list. A lookup hashes the
key, goes to the slot, and searches the short list. In open addressing, every entry lives directly in the array. When a
slot is taken, the table probes other slots in a fixed sequence, for example the next slot along, until it finds an
empty one. Lookups follow the same sequence until they find the key or reach an empty slot.

Both strategies slow down as the table fills up, because chains or probe sequences get longer. To keep operations
fast, implementations track the load factor, the ratio of entries to slots, and when it passes a threshold they
allocate a bigger array and reinsert every entry. This resizing is expensive, but it happens rarely enough that the
average cost per insertion stays constant.
""",
        "What is the load factor, and why does it matter?",
    ),
    (
        """
Day three. We left the valley town just after seven, the train half empty and the windows fogged on the inside. For
the first hour the line followed the river, which was the colour of milky tea after last night's rain, and we passed
orchards where the trees had been netted against birds. A man across the aisle was peeling an orange with great
concentration and offered me half without a word.

After the junction the train began to climb in earnest. The track looped back on itself twice, through tunnels cut into
the rock, and each time we came out into the light the valley was further below us and the houses smaller. Near the
top the snow started, first a few scattered patches in the shadows and then a full white cover on the slopes, with the
tracks of some animal crossing it in a neat dotted line.

The summit station was little more than a platform, a shed, and a bench where two railway workers were eating lunch
out of tin boxes. We stopped for ten minutes. I got out to stretch my legs and the cold went straight through my
jacket. The air smelled of pine and diesel.

The descent on the far side was faster and, to my eye, even steeper. By mid-afternoon we were among vineyards again,
the snow forgotten, and the carriage had filled up with schoolchildren heading home. I wrote these notes with the
notebook balanced on my knee, trying to keep the handwriting legible as the train rocked through the curves. Tomorrow,
the coast.
""",
        "What did the writer see near the top of the climb?",
    ),
]
SUMMARISE_TEMPLATES = [
    "Summarise the following text in one sentence.\n\n{passage}",
    "Summarise this in three bullet points:\n\n{passage}",
    "Read the passage below and write a short summary for someone who has no time to read it.\n\n{passage}",
    "{passage}\n\nTL;DR?",
]
TRANSFORM_TEMPLATES = [
    "Rewrite the following text so that a ten-year-old could understand it.\n\n{passage}",
    "Extract the key facts from this text as a JSON object.\n\n{passage}",
    "Write three quiz questions, with answers, based on this text.\n\n{passage}",
    "Rewrite the following text in a more formal tone.\n\n{passage}",
    "What is the main point of the text below, and what details support it?\n\n{passage}",
]
#: Pairs of PASSAGES indices compared in one prompt.
COMPARE_PAIRS = [(13, 19), (14, 15), (16, 18), (17, 7), (6, 10), (8, 5), (9, 2), (11, 13), (15, 12), (18, 10)]


def _explain() -> list[str]:
    return [
        f"Explain {topic} to {EXPLAIN_AUDIENCES[i % len(EXPLAIN_AUDIENCES)]} "
        f"{EXPLAIN_FORMATS[i % len(EXPLAIN_FORMATS)]}."
        for i, topic in enumerate(EXPLAIN_TOPICS)
    ]


def _translate() -> list[str]:
    prompts = [
        TRANSLATE_TEMPLATES[i % len(TRANSLATE_TEMPLATES)].format(
            language=TRANSLATE_LANGUAGES[i % len(TRANSLATE_LANGUAGES)], sentence=sentence
        )
        for i, sentence in enumerate(TRANSLATE_SENTENCES)
    ]
    prompts += [f"Translate this {language} sentence into English: {sentence}" for language, sentence in TO_ENGLISH]
    prompts += [f"Rewrite this in plain English for someone outside the field: {sentence}" for sentence in JARGON]
    return prompts


def _math() -> list[str]:
    """Eight word-problem templates, five number sets each; every problem has a whole-number or exact answer."""
    prompts = []
    for i in range(5):
        a, b = 12 + 7 * i, 3 + 2 * i
        x, y = i + 2, 9 + 4 * i
        side, other = 4 + i, 7 + 2 * i
        prompts += [
            f"A shop sells pencils at {a} cents each. How much do {b * 5} pencils cost in dollars?",
            f"A train travels {60 * b + 30 * i} kilometres in {b} hours. What is its average speed? Show your working.",
            f"What is {5 * (i + 1)}% of {40 * (i + 3)}?",
            f"Solve for x: {3 + i}x + {5 * i + 1} = {(3 + i) * x + 5 * i + 1}.",
            f"A rectangle has a perimeter of {2 * (side + other)} cm and one side of {side} cm. What is its area?",
            f"If you invest ${1000 * (i + 1)} at {2 + i}% interest compounded yearly, how much will you have after "
            f"{3 + i} years?",
            f"Alice is {b} years older than Bob. In {i + 2} years the sum of their ages will be "
            f"{2 * y + b + 2 * (i + 2)}. How old is Bob now?",
            f"What is the sum of all the whole numbers from 1 to {100 * (i + 1)}? Explain the shortcut.",
        ]
    return prompts


def _creative() -> list[str]:
    return [
        CREATIVE_FORMS[i % len(CREATIVE_FORMS)].format(subject=subject) for i, subject in enumerate(CREATIVE_SUBJECTS)
    ]


def _classify() -> list[str]:
    prompts = [
        f'Classify the sentiment of this review as positive, negative or mixed: "{review}"' for review in REVIEWS
    ]
    prompts += [
        f'Which category fits this headline best: politics, sport, science, business or culture? Headline: "{headline}"'
        for headline in HEADLINES
    ]
    return prompts


def _passages() -> dict[str, list[str]]:
    texts = [_clean(passage) for passage, _ in PASSAGES]
    n = len(SUMMARISE_TEMPLATES)
    return {
        "summarise": [
            SUMMARISE_TEMPLATES[j].format(passage=text) for i, text in enumerate(texts) for j in (i % n, (i + 2) % n)
        ],
        "reading-qa": [
            f"Read the text and answer the question.\n\nText: {text}\n\nQuestion: {question}"
            for text, (_, question) in zip(texts, PASSAGES, strict=True)
        ],
        "transform": [
            TRANSFORM_TEMPLATES[i % len(TRANSFORM_TEMPLATES)].format(passage=text) for i, text in enumerate(texts)
        ],
        "compare": [
            "Compare the two texts below: their purpose, tone and intended audience.\n\n"
            f"Text A:\n{texts[a]}\n\nText B:\n{texts[b]}"
            for a, b in COMPARE_PAIRS
        ],
    }


def build_records() -> list[dict[str, str]]:
    """Every built-in prompt as {"id", "text", "category"}, ids `<category>-<nnn>` numbered from 1 per category."""
    by_category = {
        "question": QUESTIONS,
        "explain": _explain(),
        **_passages(),
        "code": CODE_TASKS,
        "translate": _translate(),
        "list": LISTS,
        "math": _math(),
        "creative": _creative(),
        "classify": _classify(),
    }
    return [
        {"id": f"{category}-{n:03d}", "text": text, "category": category}
        for category, texts in by_category.items()
        for n, text in enumerate(texts, start=1)
    ]


def render(records: list[dict[str, str]]) -> bytes:
    """The jsonl bytes: one compact UTF-8 JSON object per line, "\\n" line endings, keys in id/text/category order."""
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def write_builtin_prompts(path: Path = DEFAULT_OUT) -> int:
    """Write the built-in set to `path` and return the number of prompts."""
    records = build_records()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render(records))
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output path (default: the packaged file)")
    args = parser.parse_args()
    print(f"wrote {write_builtin_prompts(args.out)} prompts to {args.out}")


if __name__ == "__main__":
    main()
