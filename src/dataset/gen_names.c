/* gen_names.c - the vocabulary of the synthetic shop: a two-level category
 * taxonomy with prices, consumables and title words, brand names built
 * from syllables, countries and customer segments.
 *
 * Prices are medians per subcategory (item prices are log-normal around
 * them); replenish_days marks consumables that customers buy again. The
 * gender/age biases tilt a customer's prior category affinity, so
 * demographics carry (weak) signal for cold-start models. */
#include <stdio.h>
#include <string.h>

#include "dataset/gen_internal.h"

#define S(name, price, repl, ...) {name, price, repl, {__VA_ARGS__}}

const rf_gen_catdef rf_gen_taxonomy[] = {
    {"Electronics", 0.45, -0.2,
     {"Compact", "Wireless", "Smart", "Pro", "Ultra", "Portable", "Digital", "Slim"},
     {", Black", ", Silver", ", White", ", Space Gray", ", Blue", ", 2-Pack"},
     {S("Phones", 320, 0, "Smartphone", "Phone Case", "Charger", "Screen Protector"),
      S("Audio", 70, 0, "Headphones", "Earbuds", "Speaker", "Soundbar"),
      S("Computers", 450, 0, "Laptop", "Monitor", "Keyboard", "Mouse"),
      S("Cameras", 380, 0, "Camera", "Lens", "Tripod", "Action Cam")}},
    {"Home & Kitchen", -0.25, 0.25,
     {"Classic", "Modern", "Nordic", "Rustic", "Elegant", "Everyday", "Deluxe", "Minimal"},
     {", White", ", Oak", ", Charcoal", ", Sage", ", Large", ", Set of 2"},
     {S("Cookware", 40, 0, "Frying Pan", "Saucepan", "Wok", "Dutch Oven"),
      S("Appliances", 75, 0, "Blender", "Toaster", "Kettle", "Coffee Maker"),
      S("Furniture", 210, 0, "Chair", "Desk", "Bookshelf", "Side Table"),
      S("Decor", 30, 0, "Lamp", "Vase", "Cushion", "Rug")}},
    {"Fashion", -0.55, -0.25,
     {"Slim-Fit", "Relaxed", "Vintage", "Casual", "Tailored", "Organic Cotton", "Linen", "Essential"},
     {", Black", ", Navy", ", Beige", ", Size S", ", Size M", ", Size L"},
     {S("Women", 45, 0, "Dress", "Blouse", "Skirt", "Cardigan"),
      S("Men", 48, 0, "Shirt", "Jacket", "Chinos", "Sweater"),
      S("Shoes", 75, 0, "Sneakers", "Boots", "Sandals", "Loafers"),
      S("Accessories", 35, 0, "Handbag", "Belt", "Scarf", "Sunglasses")}},
    {"Beauty", -0.75, -0.1,
     {"Hydrating", "Gentle", "Radiant", "Natural", "Matte", "Nourishing", "Vegan", "Fresh"},
     {", 30 ml", ", 50 ml", ", 100 ml", ", Travel Size", ", Refill", ", Duo"},
     {S("Skincare", 24, 45, "Moisturizer", "Serum", "Cleanser", "Sunscreen"),
      S("Makeup", 18, 75, "Lipstick", "Mascara", "Foundation", "Eyeliner"),
      S("Fragrance", 60, 0, "Perfume", "Eau de Toilette", "Body Mist", NULL),
      S("Hair Care", 12, 30, "Shampoo", "Conditioner", "Hair Oil", "Hair Mask")}},
    {"Grocery", -0.1, 0.2,
     {"Organic", "Classic", "Premium", "Roasted", "Fair-Trade", "Crunchy", "Wholesome", "Zesty"},
     {", 250 g", ", 500 g", ", 1 kg", ", Family Pack", ", 6-Pack", ", 12-Pack"},
     {S("Coffee & Tea", 11, 21, "Coffee Beans", "Green Tea", "Espresso Pods", "Ground Coffee"),
      S("Snacks", 5, 12, "Granola Bars", "Crackers", "Trail Mix", "Dark Chocolate"),
      S("Pantry", 7, 28, "Olive Oil", "Pasta", "Basmati Rice", "Peanut Butter"),
      S("Beverages", 6, 10, "Sparkling Water", "Orange Juice", "Energy Drink", "Oat Milk")}},
    {"Sports & Outdoors", 0.3, -0.3,
     {"Lightweight", "Trail", "Performance", "All-Weather", "Ergonomic", "Heavy-Duty", "Breathable", "Pro"},
     {", Red", ", Black", ", Olive", ", Small", ", Large", ", Pair"},
     {S("Fitness", 35, 0, "Yoga Mat", "Dumbbells", "Resistance Bands", "Kettlebell"),
      S("Cycling", 55, 0, "Bike Helmet", "Bike Light", "Cycling Jersey", "Bike Lock"),
      S("Camping", 90, 0, "Tent", "Sleeping Bag", "Backpack", "Camping Stove"),
      S("Sports Nutrition", 28, 30, "Protein Powder", "Energy Gel", "Electrolyte Tabs", NULL)}},
    {"Books", -0.2, 0.35,
     {"Illustrated", "Bestselling", "Collected", "Complete", "Pocket", "Annotated", "Award-Winning", "New"},
     {", Paperback", ", Hardcover", ", Large Print", ", Boxed Set", ", Special Edition", ", Vol. 2"},
     {S("Fiction", 14, 0, "Novel", "Thriller", "Short Stories", "Mystery"),
      S("Non-Fiction", 19, 0, "Biography", "History", "Cookbook", "Travel Guide"),
      S("Children's Books", 10, 0, "Picture Book", "Bedtime Stories", "Activity Book", NULL),
      S("Comics", 12, 0, "Graphic Novel", "Manga", "Comic Anthology", NULL)}},
    {"Toys & Games", 0.0, 0.05,
     {"Creative", "Colorful", "Classic", "Interactive", "Junior", "Deluxe", "Magnetic", "Wooden"},
     {", Ages 3+", ", Ages 6+", ", Ages 8+", ", Family Edition", ", Travel Edition", ", Starter Set"},
     {S("Building Sets", 40, 0, "Building Kit", "Brick Set", "Marble Run", NULL),
      S("Board Games", 30, 0, "Board Game", "Card Game", "Jigsaw Puzzle", "Strategy Game"),
      S("Dolls & Figures", 22, 0, "Action Figure", "Doll", "Plush Toy", "Dollhouse"),
      S("Outdoor Play", 45, 0, "Scooter", "Water Blaster", "Kite", "Trampoline")}},
    {"Baby", -0.4, -0.15,
     {"Soft", "Gentle", "Organic", "Cozy", "Sensitive", "Eco", "Snug", "Tiny"},
     {", Size 1", ", Size 3", ", Size 5", ", Newborn", ", 3-6 Months", ", Value Pack"},
     {S("Diapering", 24, 12, "Diapers", "Baby Wipes", "Diaper Cream", NULL),
      S("Feeding", 22, 0, "Baby Bottle", "High Chair", "Sippy Cup", "Bib Set"),
      S("Strollers & Seats", 260, 0, "Stroller", "Car Seat", "Baby Carrier", NULL),
      S("Baby Clothing", 15, 0, "Onesie", "Sleep Suit", "Baby Hat", "Romper")}},
    {"Pet Supplies", -0.1, 0.1,
     {"Grain-Free", "Durable", "Natural", "Premium", "Chewy", "Comfy", "Gourmet", "Healthy"},
     {", Small", ", Medium", ", Large", ", 2 kg", ", 7 kg", ", Multipack"},
     {S("Pet Food", 28, 21, "Dog Food", "Cat Food", "Dog Treats", "Bird Seed"),
      S("Pet Toys", 12, 0, "Chew Toy", "Cat Teaser", "Ball Launcher", NULL),
      S("Pet Care", 16, 35, "Cat Litter", "Pet Shampoo", "Flea Treatment", NULL),
      S("Pet Gear", 35, 0, "Dog Leash", "Pet Bed", "Cat Tree", "Pet Carrier")}},
    {"Garden & DIY", 0.5, 0.4,
     {"Cordless", "Heavy-Duty", "Compact", "Professional", "Weatherproof", "Precision", "Solar", "Telescopic"},
     {", 18V", ", 20V", ", Green", ", Yellow", ", Kit", ", 10-Piece"},
     {S("Power Tools", 120, 0, "Drill", "Circular Saw", "Sander", "Impact Driver"),
      S("Hand Tools", 24, 0, "Hammer", "Screwdriver Set", "Wrench", "Tape Measure"),
      S("Garden", 55, 0, "Garden Hose", "Planter", "Lawn Mower", "Pruning Shears"),
      S("Lighting", 22, 0, "LED Bulb", "Floodlight", "String Lights", NULL)}},
    {"Health", -0.15, 0.55,
     {"Daily", "Advanced", "Sensitive", "Clinical", "Gentle", "Extra-Strength", "Natural", "Complete"},
     {", 60 Capsules", ", 120 Capsules", ", 2-Pack", ", Mint", ", Unscented", ", Travel Size"},
     {S("Vitamins", 15, 30, "Multivitamin", "Vitamin D", "Fish Oil", "Magnesium"),
      S("Personal Care", 8, 40, "Toothbrush Heads", "Toothpaste", "Razor Blades", "Deodorant"),
      S("Medical", 38, 0, "Thermometer", "Blood Pressure Monitor", "First Aid Kit", NULL),
      S("Wellness", 55, 0, "Massage Gun", "Heating Pad", "Foam Roller", NULL)}},
    {"Music", 0.35, -0.05,
     {"Vintage", "Studio", "Acoustic", "Electric", "Beginner", "Professional", "Handcrafted", "Compact"},
     {", Natural", ", Sunburst", ", Black", ", Left-Handed", ", Bundle", ", Gig Bag"},
     {S("Guitars", 260, 0, "Acoustic Guitar", "Electric Guitar", "Ukulele", "Bass Guitar"),
      S("Keyboards", 320, 0, "Digital Piano", "Synthesizer", "MIDI Keyboard", NULL),
      S("Music Accessories", 12, 60, "Guitar Strings", "Capo", "Clip-On Tuner", "Picks"),
      S("Recording", 140, 0, "Microphone", "Audio Interface", "Studio Monitors", NULL)}},
    {"Office", 0.05, 0.3,
     {"Ergonomic", "Recycled", "Executive", "Classic", "Adjustable", "Smart", "Premium", "Compact"},
     {", Black", ", Blue", ", A4", ", A5", ", 5-Pack", ", 12-Pack"},
     {S("Stationery", 8, 45, "Notebook", "Gel Pens", "Sticky Notes", "Highlighters"),
      S("Printing", 32, 60, "Ink Cartridge", "Printer Paper", "Toner", NULL),
      S("Office Furniture", 240, 0, "Office Chair", "Standing Desk", "Filing Cabinet", NULL),
      S("Organization", 16, 0, "Desk Organizer", "File Folders", "Label Maker", NULL)}},
    {"Automotive", 0.65, 0.2,
     {"Premium", "All-Season", "Heavy-Duty", "Universal", "Quick-Fit", "High-Performance", "Compact", "Rugged"},
     {", 500 ml", ", 1 L", ", Pair", ", Universal Fit", ", Kit", ", Black"},
     {S("Car Care", 14, 60, "Car Wax", "Microfiber Cloths", "Car Shampoo", "Glass Cleaner"),
      S("Parts", 32, 0, "Wiper Blades", "Air Filter", "Brake Pads", "Spark Plugs"),
      S("Car Electronics", 45, 0, "Dash Cam", "Car Charger", "Phone Mount", "Tire Inflator"),
      S("Motor Oil", 30, 90, "Motor Oil", "Coolant", "Windshield Fluid", NULL)}},
    {"Video Games", 0.55, -0.6,
     {"Legendary", "Ultimate", "Deluxe", "Retro", "Wireless", "Pro", "Limited", "Elite"},
     {", Standard Edition", ", Gold Edition", ", Black", ", White", ", Digital Code", ", Bundle"},
     {S("Consoles", 380, 0, "Game Console", "Handheld Console", "VR Headset", NULL),
      S("Games", 50, 0, "Action Game", "Racing Game", "Puzzle Game", "Role-Playing Game"),
      S("Gaming Accessories", 55, 0, "Controller", "Gaming Headset", "Gaming Mouse", "Charging Dock"),
      S("Gift Cards", 25, 0, "Game Gift Card", "Subscription Card", NULL, NULL)}},
};
const int rf_gen_taxonomy_n = (int)(sizeof rf_gen_taxonomy / sizeof rf_gen_taxonomy[0]);

const rf_gen_catdef rf_gen_generic_cat = {
    NULL, 0.0, 0.0,
    {"Classic", "Modern", "Premium", "Essential", "Deluxe", "Compact", "Eco", "Signature"},
    {", Black", ", White", ", Small", ", Large", ", Set", ", Refill"},
    {S("Line A", 25, 0, "Item", "Kit", "Set", "Bundle"),
     S("Line B", 60, 0, "Unit", "Module", "Pack", NULL),
     S("Line C", 12, 30, "Refill", "Cartridge", "Supply Pack", NULL),
     S("Line D", 150, 0, "System", "Station", "Device", NULL)}};

static const char *const syl1[32] = {
    "Nor", "Kal", "Zen", "Vel", "Tor", "Lum", "Ard", "Bri", "Cor", "Dax", "Ely", "Fen", "Gal", "Hal", "Iso", "Jun",
    "Kir", "Lor", "Mar", "Nyx", "Oro", "Pax", "Quin", "Ros", "Sol", "Tav", "Umb", "Vor", "Wen", "Xan", "Yar", "Zol"};
static const char *const syl2[16] = {"vex", "ora", "ix", "ant", "eon", "ova", "ika", "tron",
                                     "line", "ware", "co", "sy", "den", "mo", "ra", "well"};

void rf_gen_brand_name(uint64_t seed, int64_t k, char *buf, size_t size) {
    /* A seed-dependent bijection of 0..511 (multiply by an odd number and
     * add, mod 512), so shops with different seeds get different names. */
    uint64_t mul = ((seed * 0x9e3779b97f4a7c15ull) >> 40) | 1;
    uint64_t add = (seed * 0xbf58476d1ce4e5b9ull) >> 50;
    uint64_t j = ((uint64_t)(k % 512) * mul + add) & 511;
    const char *a = syl1[j >> 4], *b = syl2[j & 15];
    if (k < 512)
        snprintf(buf, size, "%s%s", a, b);
    else
        snprintf(buf, size, "%s%s %lld", a, b, (long long)(k / 512 + 1));
}

const char *const rf_gen_countries[RF_GEN_NCOUNTRIES] = {"US", "DE", "GB", "FR", "NL", "ES", "IT",
                                                         "PL", "SE", "CA", "AU", "JP", "BR", "IN"};
const double rf_gen_country_weights[RF_GEN_NCOUNTRIES] = {0.30, 0.12, 0.10, 0.08, 0.05, 0.05, 0.05,
                                                          0.04, 0.03, 0.05, 0.03, 0.04, 0.03, 0.03};

const char *const rf_gen_segments[RF_GEN_NSEG] = {"bargain", "mainstream", "premium", "loyal"};
const double rf_gen_segment_weights[RF_GEN_NSEG] = {0.25, 0.50, 0.13, 0.12};
