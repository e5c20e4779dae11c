// Hand-written contents of the synthetic personal-memory benchmark, part 2:
// the ordinary conversations that the facts are tucked into, on topics that
// carry no personal fact and name no value of any pool (checked by the unit
// tests). No library provides these; the words are original, written for
// this project.
#include "eval/benchmark_content.h"

namespace mnemo::benchmark {

const std::vector<Conversation>& conversations() {
  static const std::vector<Conversation> pool = {
      {"tomato soup recipe",
       {
           {"How do I make a simple tomato soup from canned tomatoes?",
            "Soften a chopped onion and two cloves of garlic in olive oil, add two cans of tomatoes and a cup of "
            "stock, then simmer for about twenty minutes. Blend until smooth and season with salt, pepper and a "
            "pinch of sugar to balance the acidity."},
           {"Can I make it creamier without adding cream?",
            "Yes. Blend in a small boiled potato or a spoonful of cooked white beans; both thicken the soup and give "
            "it a silky texture without any cream at all."},
       }},
      {"sorting in Python",
       {
           {"How do I sort a list of dictionaries by one key in Python?",
            "Use the built-in sorted function with a key argument, for example sorted(items, key=lambda d: d['age']). "
            "Add reverse=True to sort in descending order."},
           {"What if some dictionaries are missing that key?",
            "Use d.get('age', 0) inside the lambda so a missing key falls back to a default. Pick a default that "
            "sorts where you want those items, such as a very large number to push them to the end."},
       }},
      {"long flight packing",
       {
           {"What should I pack in a carry-on bag for a long flight?",
            "Bring a refillable water bottle, a light sweater, headphones, a phone charger, any essential medication "
            "and a change of clothes in case a checked bag is delayed. A neck pillow and compression socks also "
            "help on long flights."},
           {"Any advice for dealing with jet lag?",
            "Start shifting your sleep schedule a day or two before you leave, drink plenty of water, and get "
            "daylight in the morning at your destination. Try to stay awake until a normal local bedtime on the "
            "first day."},
       }},
      {"why the sky is blue",
       {
           {"Why is the sky blue?",
            "Sunlight contains all colors, but the short blue wavelengths are scattered much more strongly by gas "
            "molecules in the air, an effect called Rayleigh scattering. That scattered blue light reaches your "
            "eyes from every direction, so the whole sky looks blue."},
           {"Then why are sunsets red and orange?",
            "At sunset the light passes through much more air to reach you, so most of the blue is scattered away "
            "before it arrives. The longer red and orange wavelengths make it through and color the sky near the "
            "horizon."},
       }},
      {"declining a meeting by email",
       {
           {"Can you help me write a polite email declining a meeting invitation?",
            "Sure: Thank you for the invitation. Unfortunately I won't be able to attend on Thursday because of a "
            "prior commitment. Could you share the notes afterwards, or let me know if I can contribute by email?"},
           {"Should I suggest another time as well?",
            "If the meeting matters to you, yes. Offering two or three alternative slots shows goodwill and makes it "
            "easy for the organizer to reschedule without a long back-and-forth."},
       }},
      {"slipping bike chain",
       {
           {"What makes a bicycle chain slip when you pedal hard?",
            "The usual causes are a worn chain, worn teeth on the cassette or chainring, or a rear derailleur that is "
            "out of adjustment. A cheap chain checker tool tells you whether the chain has stretched and needs "
            "replacing."},
           {"How do I adjust the rear derailleur?",
            "Turn the barrel adjuster a quarter turn at a time: counterclockwise if the chain is slow to climb to "
            "larger cogs, clockwise if it is slow to drop to smaller ones. Test the shifting after each small "
            "change."},
       }},
      {"growing tomatoes",
       {
           {"When should tomato seedlings go outside?",
            "Plant them after the last frost, once nights stay above about 10 degrees Celsius. Harden them off first "
            "by setting them outside for a few hours a day over a week, so they get used to sun and wind."},
           {"How often should I water them?",
            "Water deeply at the base two or three times a week rather than a little every day, aiming for steady "
            "moisture. Irregular watering can cause split fruit and blossom end rot."},
           {"Do they need any support?",
            "Most varieties do. Put a stake or cage in place at planting time so you don't damage the roots later, "
            "and tie the main stem loosely as it grows."},
       }},
      {"the 50/30/20 budget",
       {
           {"What is the 50/30/20 budgeting rule?",
            "It splits after-tax income into three parts: 50 percent for needs like rent, groceries and bills, 30 "
            "percent for wants like eating out and entertainment, and 20 percent for savings and paying down debt."},
           {"What if rent alone is more than half of someone's income?",
            "Then treat the percentages as a guide rather than a rule. Trim the wants category first, keep at least a "
            "little going to savings, and look for other fixed costs to cut, such as unused subscriptions."},
       }},
      {"the printing press",
       {
           {"Who invented the printing press?",
            "Johannes Gutenberg developed a movable-type printing press in Mainz around 1440. Movable type existed "
            "earlier in East Asia, but his system of metal type, oil-based ink and a screw press spread quickly "
            "across Europe."},
           {"What was the first major book he printed?",
            "The Gutenberg Bible, finished around 1455. Roughly 180 copies were printed, and fewer than fifty survive "
            "today, which makes them some of the most valuable books in the world."},
       }},
      {"fewer versus less",
       {
           {"When should I use fewer instead of less?",
            "Use fewer for things you can count one by one, like fewer apples or fewer mistakes, and less for amounts "
            "you measure as a whole, like less water or less time."},
           {"Is it wrong to say less people?",
            "In careful writing, fewer people is preferred because people can be counted. In everyday speech less "
            "people is very common, and most listeners will not mind."},
       }},
      {"beginner strength training",
       {
           {"What is a good beginner routine for building strength?",
            "Try three full-body sessions a week with squats, push-ups, rows, lunges and planks. Start with two or "
            "three sets of 8 to 12 repetitions, rest a day between sessions, and add load gradually."},
           {"How long before I notice results?",
            "Most beginners feel stronger within three or four weeks, largely because the nervous system learns the "
            "movements. Visible muscle changes usually take two to three months of steady training, enough protein "
            "and good sleep."},
       }},
      {"a first science fiction novel",
       {
           {"Can you recommend a science fiction novel for someone new to the genre?",
            "The Martian by Andy Weir is a great entry point: it is funny, fast-paced and grounded in real science. "
            "For something more reflective, The Left Hand of Darkness by Ursula K. Le Guin is a classic."},
           {"Is The Martian very technical?",
            "It has plenty of science, but it is explained in a casual, joking voice, so you don't need any "
            "background to follow it. Most readers find the problem-solving exciting rather than dry."},
       }},
      {"soft-boiled eggs",
       {
           {"How long should I boil an egg for a runny yolk?",
            "Lower the egg into water that is already boiling and cook it for about six minutes for a runny yolk and "
            "set white. Move it straight into cold water for a minute to stop the cooking."},
           {"Why are some boiled eggs so hard to peel?",
            "Very fresh eggs stick to their shells. Eggs that are a week or two old peel more easily, and starting "
            "them in boiling water rather than cold water helps as well."},
       }},
      {"undoing a git commit",
       {
           {"How do I undo my last git commit but keep the changes?",
            "Run git reset --soft HEAD~1. That moves the branch back one commit and leaves your changes staged, so "
            "you can edit them and commit again."},
           {"What if I already pushed it?",
            "Then use git revert HEAD, which adds a new commit that undoes the old one without rewriting shared "
            "history. Rewriting a pushed branch forces everyone else to repair their copies."},
       }},
      {"photosynthesis",
       {
           {"Can you explain photosynthesis simply?",
            "Plants capture light with a green pigment called chlorophyll and use that energy to turn carbon dioxide "
            "from the air and water from the soil into glucose, a sugar they use for energy and growth."},
           {"Where does the oxygen come from?",
            "It comes from the water molecules, which are split apart during the light-dependent reactions. The plant "
            "releases the oxygen as a by-product, and that is the oxygen animals breathe."},
       }},
      {"compound interest",
       {
           {"What is compound interest?",
            "It is interest earned on both the original amount and the interest already added. For example, 1,000 at "
            "5 percent a year grows to 1,050 after one year and 1,102.50 after two."},
           {"What is the rule of 72?",
            "It is a quick way to estimate how long money takes to double: divide 72 by the yearly interest rate. At "
            "6 percent, money doubles in about 12 years; at 9 percent, in about 8 years."},
       }},
      {"yellow houseplant leaves",
       {
           {"Why are the leaves on a houseplant turning yellow?",
            "The most common cause is overwatering, which starves the roots of oxygen. Other causes include too "
            "little light, a lack of nutrients, or older lower leaves simply dying off naturally."},
           {"How can I tell when it needs water?",
            "Push a finger about two centimeters into the soil. If it feels dry at that depth, water thoroughly until "
            "it drains out of the bottom; if it still feels damp, wait a few days and check again."},
       }},
      {"meetings across time zones",
       {
           {"How can a team schedule meetings fairly across time zones?",
            "Look for the overlap in normal working hours, and if there is none, rotate the awkward slot so the same "
            "people are not always joining very early or very late."},
           {"Are there tools that make this easier?",
            "Most calendar apps can show two or more time zones side by side, and world clock websites let you "
            "compare many cities at once. Recording meetings also helps people who cannot attend live."},
       }},
      {"pour-over coffee",
       {
           {"How do I brew coffee with a pour-over cone?",
            "Use about 15 grams of medium-fine ground coffee for 250 milliliters of water just off the boil. Let the "
            "grounds bloom with a splash of water for 30 seconds, then pour slowly in circles for about three "
            "minutes in total."},
           {"My coffee tastes bitter. What should I change?",
            "Bitterness usually means over-extraction, so try a slightly coarser grind or a shorter brew time. Water "
            "that is too hot can also pull out harsh flavors."},
       }},
      {"SQL joins",
       {
           {"What is the difference between an inner join and a left join in SQL?",
            "An inner join returns only the rows that have matching values in both tables. A left join returns every "
            "row from the left table and fills in NULL for the right table's columns where there is no match."},
           {"When would I pick a left join?",
            "Use it when you want to keep every record from the main table even if related data is missing, such as "
            "listing all customers with their orders, including customers who have never ordered."},
       }},
      {"red wine stains",
       {
           {"How do I get a red wine stain out of a cotton shirt?",
            "Blot up as much as you can, then rinse the back of the fabric with cold water. Work in a little dish "
            "soap or stain remover, let it sit for a few minutes, and wash in cold water."},
           {"Should I put it in the dryer afterwards?",
            "Not until the stain is completely gone. Heat from the dryer can set the stain permanently, so let the "
            "shirt air dry and check it first."},
       }},
      {"phases of the moon",
       {
           {"Why does the moon have phases?",
            "Half of the moon is always lit by the sun, but as it orbits Earth we see different portions of that lit "
            "half. When it sits between us and the sun we see a new moon, and on the far side a full moon."},
           {"How long does one full cycle take?",
            "About 29.5 days from one new moon to the next. That is a little longer than the 27.3 days the moon needs "
            "to orbit Earth relative to the stars, because Earth is also moving around the sun."},
       }},
      {"thank-you note after an interview",
       {
           {"What should a thank-you email after an interview say?",
            "Keep it short: thank the interviewer for their time, mention one specific topic you enjoyed discussing, "
            "briefly restate why you are a good fit, and say you look forward to hearing from them."},
           {"How soon should I send it?",
            "Within a day of the interview is ideal. Sending it the same afternoon or the next morning keeps you "
            "fresh in their mind while they compare candidates."},
       }},
      {"fall of the Western Roman Empire",
       {
           {"When did the Western Roman Empire fall?",
            "The traditional date is 476 CE, when Odoacer deposed the last western emperor, Romulus Augustulus. The "
            "decline was gradual, though, and the eastern half lasted as the Byzantine Empire until 1453."},
           {"Why did it decline?",
            "Historians point to many causes working together: political instability, economic strain, pressure from "
            "migrating peoples on the frontiers, and an army that was expensive to maintain."},
       }},
      {"its versus it's",
       {
           {"What is the difference between its and it's?",
            "It's is short for it is or it has, as in it's raining. Its is the possessive form, as in the company "
            "updated its logo, and it never takes an apostrophe."},
           {"Is there an easy way to check which one I need?",
            "Try replacing the word with it is. If the sentence still makes sense, use it's; if it sounds wrong, use "
            "its."},
       }},
      {"stretching and runs",
       {
           {"Should I stretch before or after a run?",
            "Before a run, a few minutes of dynamic movement such as leg swings, walking lunges and easy jogging "
            "warms you up better than holding stretches. Save longer static stretches for afterwards, when your "
            "muscles are warm."},
           {"How fast should an easy run feel?",
            "You should be able to hold a conversation in full sentences. If you are too out of breath to talk, slow "
            "down; most of your weekly running should feel comfortable."},
       }},
      {"bread dough that won't rise",
       {
           {"Why didn't my bread dough rise?",
            "The usual culprits are old yeast, water hot enough to kill the yeast, or a kitchen that is too cold. "
            "Test yeast by mixing it with warm water and a pinch of sugar; it should foam within ten minutes."},
           {"Where is a good warm spot for dough to rise?",
            "Try an oven that is switched off with only the light on, or a spot near a warm radiator. Cover the bowl "
            "so the surface of the dough does not dry out."},
       }},
      {"strong passwords",
       {
           {"How can I create a strong password that I can remember?",
            "Use a passphrase of four or more random, unrelated words, and add a number or symbol if a site requires "
            "one. Better still, use a password manager so every account gets a unique password."},
           {"Is two-factor authentication worth the hassle?",
            "Yes. It blocks most account takeovers even when a password leaks. An authenticator app or hardware key "
            "is more secure than text-message codes, but any second factor is far better than none."},
       }},
      {"how volcanoes form",
       {
           {"How do volcanoes form?",
            "Most form where tectonic plates meet. At subduction zones one plate sinks and partly melts, and at "
            "spreading ridges plates pull apart so magma can rise. Others form over hot spots in the mantle."},
           {"What makes some eruptions explosive?",
            "Thick, sticky magma that is rich in silica traps gas bubbles until the pressure bursts out violently. "
            "Runny magma lets gas escape easily, so it tends to produce gentler lava flows."},
       }},
      {"emergency funds",
       {
           {"How big should an emergency fund be?",
            "A common guideline is three to six months of essential expenses, kept in an easy-to-access savings "
            "account. If income is irregular or others depend on it, aim for the higher end."},
           {"Where should I keep that money?",
            "Somewhere safe and quick to reach, such as a high-yield savings account. Avoid investing it in stocks, "
            "because you may need it exactly when markets are down."},
       }},
      {"centering with CSS",
       {
           {"How do I center a div both horizontally and vertically with CSS?",
            "Make the parent a flex container with display: flex, justify-content: center and align-items: center, "
            "and give it a height. With grid, display: grid and place-items: center do the same."},
           {"Does that work in older browsers?",
            "Flexbox and grid are supported in every current browser. Only very old versions of Internet Explorer "
            "have problems, and almost nobody uses those any more."},
       }},
      {"keeping cut flowers fresh",
       {
           {"How can I make cut flowers last longer?",
            "Trim the stems at an angle, remove any leaves that would sit below the waterline, and change the water "
            "every two days. Keep the vase away from direct sun, heat and ripening fruit."},
           {"Why does ripening fruit matter?",
            "Ripening fruit gives off ethylene, a gas that speeds up aging in many flowers. Keeping the two apart can "
            "add days to a bouquet."},
       }},
      {"what inflation is",
       {
           {"What exactly is inflation?",
            "Inflation is the general rise in prices over time, which means each unit of money buys a little less. "
            "Many central banks aim to keep it around 2 percent a year."},
           {"How do central banks bring it down?",
            "Mainly by raising interest rates. Higher rates make borrowing more expensive and saving more attractive, "
            "which cools spending and eases the pressure on prices."},
       }},
      {"a card game for six",
       {
           {"Can you suggest a game for a group of six people at a party?",
            "Codenames works well for six: two teams race to guess their words from one-word clues. With just a "
            "standard deck of cards, Spoons or Crazy Eights are quick to learn and get everyone laughing."},
           {"How do you play Spoons?",
            "Put one spoon fewer than the number of players in the middle. Everyone passes cards around trying to "
            "collect four of a kind; the first to do so grabs a spoon, everyone else scrambles, and whoever is left "
            "without one is out."},
       }},
      {"falling asleep faster",
       {
           {"Any tips for falling asleep faster?",
            "Keep a consistent wake-up time, avoid caffeine after early afternoon, and dim screens and lights in the "
            "last hour before bed. If you are still awake after about twenty minutes, get up and do something calm."},
           {"Does a nap ruin nighttime sleep?",
            "Not if it is short and early. A nap of about 20 minutes before mid-afternoon can boost alertness without "
            "making it much harder to fall asleep at night."},
       }},
      {"binary numbers",
       {
           {"How do I convert the decimal number 13 to binary?",
            "Divide by 2 repeatedly and note the remainders: 13 gives 6 remainder 1, 6 gives 3 remainder 0, 3 gives 1 "
            "remainder 1, and 1 gives 0 remainder 1. Reading the remainders from last to first gives 1101."},
           {"And how do I go back from binary to decimal?",
            "Multiply each digit by its power of two and add them up. For 1101 that is 8 + 4 + 0 + 1, which equals "
            "13."},
       }},
      {"cover letter openings",
       {
           {"How should a cover letter begin?",
            "Open with the role you are applying for and a specific reason it appeals to you, then follow with your "
            "strongest relevant achievement. A concrete first sentence makes the reader want to keep going."},
           {"How long should the whole letter be?",
            "Aim for three or four short paragraphs that fit on a single page. Hiring managers skim, so every "
            "sentence should earn its place."},
       }},
      {"minor burns",
       {
           {"What should I do for a minor burn from the stove?",
            "Cool it under cool running water for about 20 minutes, then cover it loosely with cling film or a clean, "
            "non-fluffy dressing. Avoid ice and butter, and get medical help if the burn is large or blistering "
            "badly."},
       }},
      {"autumn leaf colors",
       {
           {"Why do leaves change color in autumn?",
            "As days shorten, trees stop making chlorophyll, the green pigment, and what is left breaks down. That "
            "reveals yellow and orange pigments called carotenoids that were there all along."},
           {"Where do the red colors come from?",
            "Red and purple shades come from anthocyanins, which some trees actively produce in autumn. Sunny days "
            "and cool nights tend to make these colors especially bright."},
       }},
      {"writing a haiku",
       {
           {"What is the structure of a haiku?",
            "A traditional English haiku has three lines of five, seven and five syllables, often capturing a moment "
            "in nature with a hint of the season. Many modern poets loosen the count but keep it brief."},
           {"Could you write one about rain?",
            "Here is one: Soft rain on the roof, the garden drinks in silence, puddles hold the sky."},
       }},
      {"learning to touch type",
       {
           {"How can I learn to touch type?",
            "Rest your fingers on the home row, with the index fingers on F and J, and practice with a typing tutor "
            "for about 15 minutes a day. Focus on accuracy first and resist looking at the keyboard."},
           {"How long does it usually take?",
            "With daily practice, most people can type without looking within a few weeks. Reaching a fast, "
            "comfortable speed usually takes a couple of months."},
       }},
      {"removing rust from tools",
       {
           {"How do I remove rust from old hand tools?",
            "Soak small tools in white vinegar for a few hours, then scrub them with a wire brush and rinse. Dry them "
            "completely right away, because bare metal rusts again quickly."},
           {"How can I stop the rust coming back?",
            "Wipe a thin coat of light oil over the metal and store the tools somewhere dry. A few silica gel packets "
            "in the toolbox help soak up moisture."},
       }},
      {"the Pythagorean theorem",
       {
           {"Can you explain the Pythagorean theorem?",
            "In a right-angled triangle, the square of the longest side, the hypotenuse, equals the sum of the "
            "squares of the other two sides. With sides of 3 and 4, the hypotenuse is 5."},
           {"What is it useful for in everyday life?",
            "It helps with any right angle: checking that a wall corner is square, working out the length of a ladder "
            "you need, or finding the straight-line distance across a rectangular field."},
       }},
      {"weekly meal prep",
       {
           {"How do I get started with weekly meal prep?",
            "Choose two or three recipes that reheat well, cook a big batch of a grain and a protein, and roast a "
            "tray of vegetables. Portion everything into airtight containers."},
           {"How long does prepared food keep in the fridge?",
            "Most cooked dishes keep safely for three to four days in the fridge. Freeze anything you plan to eat "
            "later in the week, and reheat it until it is steaming hot."},
       }},
      {"negotiating a job offer",
       {
           {"How should I approach negotiating a job offer?",
            "Research typical pay for the role, thank them for the offer, and then ask whether there is flexibility, "
            "naming a specific figure backed by your research."},
           {"What if they say the salary is fixed?",
            "Ask about other parts of the package, such as extra vacation days, a signing bonus, remote work or a "
            "training budget. These are often easier for employers to change."},
       }},
      {"thunder and lightning",
       {
           {"What causes thunder?",
            "Lightning heats the air along its path to tens of thousands of degrees in a split second. The air "
            "expands explosively and sends out a shock wave, which we hear as thunder."},
           {"How can I tell how far away a storm is?",
            "Count the seconds between the flash and the thunder. Divide by three for a rough distance in kilometers, "
            "or by five for miles, since sound travels far more slowly than light."},
       }},
      {"let and const in JavaScript",
       {
           {"What is the difference between let and const in JavaScript?",
            "Both are block-scoped. Use const when a variable will never be reassigned and let when it will be."},
           {"So does const make an object immutable?",
            "No. Const only stops you from pointing the name at a different value; you can still change the "
            "properties of an object it holds. Use Object.freeze if you need a shallowly frozen object."},
       }},
      {"starting a compost pile",
       {
           {"How do I start a compost pile?",
            "Mix roughly equal volumes of green material, like vegetable scraps and grass clippings, with brown "
            "material, like dry leaves and cardboard. Keep it as damp as a wrung-out sponge and turn it every week "
            "or two."},
           {"What shouldn't go in it?",
            "Leave out meat, fish, dairy and oily food, which attract pests and smell. Diseased plants and weeds that "
            "have gone to seed are also best kept out of a home pile."},
       }},
      {"visiting a large museum",
       {
           {"How can I see a big museum without getting exhausted?",
            "Pick a handful of rooms or works you really want to see and head there first while you are fresh. Take a "
            "break halfway through, and go early on a weekday to avoid crowds."},
           {"Are audio guides worth it?",
            "Often, yes. They add stories and context you would miss on your own, and you can skip the stops that "
            "don't interest you."},
       }},
      {"weather versus climate",
       {
           {"What is the difference between weather and climate?",
            "Weather is the short-term state of the atmosphere, like today's rain or tomorrow's temperature. Climate "
            "is the average pattern of weather in a region over decades, usually thirty years or more."},
       }},
      {"how vaccines work",
       {
           {"How do vaccines work?",
            "A vaccine shows the immune system a harmless piece or weakened version of a germ, so it learns to "
            "recognize it and makes antibodies and memory cells. If the real germ appears later, the body responds "
            "quickly."},
           {"Why do some vaccines need boosters?",
            "For some vaccines the immune memory fades over time, or the germ changes. A booster dose reminds the "
            "immune system and raises protection back up."},
       }},
      {"nerves before a presentation",
       {
           {"How can I feel less nervous before giving a presentation?",
            "Rehearse out loud several times, ideally in front of one or two people, and know your opening lines "
            "well. Slow breathing just before you start helps calm your body."},
           {"What if my mind goes blank halfway through?",
            "Pause, take a breath and glance at your notes; a short silence feels much longer to you than to the "
            "audience. Keeping a few key words on a card makes it easy to find your place again."},
       }},
      {"VLOOKUP in spreadsheets",
       {
           {"How does VLOOKUP work in a spreadsheet?",
            "VLOOKUP searches for a value in the first column of a range and returns a value from another column in "
            "the same row. The last argument, FALSE, asks for an exact match."},
           {"Is there a better alternative?",
            "Yes. XLOOKUP in newer versions of Excel, or INDEX combined with MATCH, can look to the left as well as "
            "the right and does not break when you insert columns."},
       }},
      {"seasoning a cast iron pan",
       {
           {"How do I season a cast iron pan?",
            "Wash and dry the pan, rub a very thin layer of cooking oil over every surface, then wipe off as much as "
            "you can. Bake it upside down in a hot oven for an hour and let it cool inside."},
           {"Can I use soap on it afterwards?",
            "A little mild dish soap is fine on a well-seasoned pan. Just avoid soaking it, dry it right away on the "
            "stove, and rub in a drop of oil while it is warm."},
       }},
      {"what a black hole is",
       {
           {"What is a black hole?",
            "A black hole is a region where gravity is so strong that nothing, not even light, can escape once it "
            "crosses the boundary called the event horizon. Many form when very massive stars collapse."},
           {"Could Earth fall into one?",
            "There is no black hole anywhere near us. The closest known ones are thousands of light-years away, far "
            "too distant to affect Earth."},
       }},
      {"decluttering a home",
       {
           {"What is a good way to start decluttering?",
            "Work on one small area at a time, such as a single drawer, and sort items into keep, donate and discard "
            "piles. Ask whether you have used each thing in the past year."},
           {"How do I avoid the clutter coming back?",
            "Give every item a home and try a one-in, one-out rule for things like clothes and books. A short tidy at "
            "the end of each day also stops piles from building up."},
       }},
      {"folding a fitted sheet",
       {
           {"Is there a trick to folding a fitted sheet?",
            "Hold it by two neighboring corners with your hands inside the pockets, then tuck one corner into the "
            "other. Repeat with the other two corners, lay it flat, fold the elastic edges in to make a rectangle, "
            "and fold it like a towel."},
       }},
      {"recursion",
       {
           {"Can you explain recursion in programming?",
            "Recursion is when a function solves a problem by calling itself on a smaller version of the same "
            "problem. Every recursive function needs a base case that stops the calls, like returning 1 for the "
            "factorial of 0."},
           {"Can recursion cause problems?",
            "Very deep recursion can overflow the call stack, because each call uses memory until it returns. For "
            "very deep problems, a loop or an explicit stack is usually safer."},
       }},
      {"planting tulip bulbs",
       {
           {"When should I plant tulip bulbs?",
            "Plant tulips in autumn, a few weeks before the ground freezes, once the soil has cooled. Set each bulb "
            "about three times as deep as it is tall, with the pointed end facing up."},
           {"Do squirrels dig them up?",
            "They often do. Laying chicken wire over the planted area or mixing sharp gravel into the hole "
            "discourages them, and you can remove the wire once the shoots appear."},
       }},
      {"affect versus effect",
       {
           {"When do I use affect and when do I use effect?",
            "Affect is usually a verb meaning to influence, as in the rain affected our plans. Effect is usually a "
            "noun meaning a result, as in the medicine had a quick effect."},
           {"Are there exceptions?",
            "Yes. Effect can be a verb meaning to bring about, as in to effect change, and affect can be a noun in "
            "psychology, where it means an outward display of emotion."},
       }},
      {"how tides work",
       {
           {"What causes ocean tides?",
            "Mainly the moon's gravity, which pulls the oceans into a bulge on the side facing the moon and another "
            "on the opposite side. As Earth rotates through these bulges, most coasts get two high and two low "
            "tides a day."},
           {"Does the sun play a part?",
            "Yes, but its effect is a bit under half of the moon's. When the sun and moon line up, at new and full "
            "moon, the tides are larger, and these are called spring tides."},
       }},
      {"daily water intake",
       {
           {"How much water should a person drink each day?",
            "Needs vary with body size, activity and climate, but a common guide is about 2 to 3 liters of total "
            "fluid a day, including what comes from food."},
           {"How can I tell if I'm drinking enough?",
            "Pale yellow urine and rarely feeling thirsty are good signs. Drink more on hot days and when you "
            "exercise, since you lose extra fluid through sweat."},
       }},
      {"congratulating a coworker",
       {
           {"Can you write a short note congratulating a coworker on a promotion?",
            "Congratulations on your promotion! It is so well deserved, and I am excited to see what you do in the "
            "new role. Let me know if there is anything I can do to help as you settle in."},
           {"Could you make it a bit more casual?",
            "Sure: Huge congrats on the promotion! Nobody deserves it more. Drinks are on me to celebrate soon."},
       }},
      {"supply and demand",
       {
           {"Can you explain supply and demand?",
            "When demand for something rises and supply stays the same, prices tend to go up; when supply rises and "
            "demand stays the same, prices tend to fall. The price settles where buyers and sellers meet."},
           {"Why do concert tickets sell out so fast then?",
            "Ticket prices are often set below what the market would bear, so demand far exceeds the limited supply. "
            "That gap is also what lets resellers charge much higher prices."},
       }},
      {"building the pyramids",
       {
           {"How were the Egyptian pyramids built?",
            "Workers quarried limestone blocks nearby, moved them on sledges over wetted sand, and hauled them up "
            "ramps. The builders were mostly paid laborers organized into teams, not slaves."},
           {"How long did the Great Pyramid take?",
            "Estimates suggest about twenty years. It was built for the pharaoh Khufu around 2560 BCE and was the "
            "tallest structure made by humans for nearly four thousand years."},
       }},
      {"metal in the microwave",
       {
           {"Why can't you put metal in a microwave?",
            "Microwaves push electric charges around in metal, and thin or pointed pieces like foil edges or fork "
            "tines can build up charge and spark. That can damage the oven or even start a fire."},
           {"Is it the same for all metal?",
            "Smooth, thick metal is less likely to spark, and some ovens come with metal racks designed for them. "
            "Still, it is safest to keep metal out unless the manual says otherwise."},
       }},
      {"choosing a houseplant for low light",
       {
           {"Which houseplants cope well with low light?",
            "Snake plants, ZZ plants and pothos all tolerate dim corners and occasional neglect. They grow more "
            "slowly in low light, so water them less often than plants in bright spots."},
           {"Are any of those safe around small children?",
            "All three can upset the stomach if chewed, so keep them out of reach. A parlor palm or a spider plant is "
            "a safer choice for homes with curious toddlers."},
       }},
      {"reading more books",
       {
           {"How can I find more time to read?",
            "Carry a book or an e-reader everywhere and read in small gaps, like waiting in line or on a commute. "
            "Replacing twenty minutes of scrolling before bed with reading adds up quickly."},
           {"Is it okay to quit a book I'm not enjoying?",
            "Absolutely. Life is short and there are more good books than you could ever read, so moving on leaves "
            "more time for the ones you love."},
       }},
      {"backing up files",
       {
           {"What is a good way to back up important files?",
            "Follow the 3-2-1 rule: keep three copies of your data, on two different kinds of storage, with one copy "
            "off-site, such as in a cloud service."},
           {"How often should backups run?",
            "As often as you can tolerate losing work. Automatic daily backups suit most people, and it is worth "
            "testing a restore now and then to be sure the copies actually work."},
       }},
      {"why ice floats",
       {
           {"Why does ice float on water?",
            "When water freezes, its molecules lock into an open, hexagonal pattern held by hydrogen bonds. That "
            "makes ice about nine percent less dense than liquid water, so it floats."},
           {"Why does that matter for lakes?",
            "Because ice forms on top, it insulates the water below and keeps it from freezing solid. Fish and other "
            "life can survive the winter in the liquid water underneath."},
       }},
      {"a polite complaint letter",
       {
           {"How do I write a complaint letter that actually gets results?",
            "Stay calm and specific: say what you bought or used and when, describe the problem clearly, and state "
            "exactly what you would like done, such as a refund or a repair."},
           {"Should I mention a deadline?",
            "Yes, a reasonable one helps, such as asking for a reply within fourteen days. Keep copies of everything "
            "you send in case you need to escalate later."},
       }},
  };
  return pool;
}

}  // namespace mnemo::benchmark
