"""Demo data: a seeded, plausible grocery and department-store retailer, and its fast loader.

``generate`` builds a category tree (department > subcategory > leaf), brands with
Zipf-like catalogue sizes, products, advertisers (advertiser ``n`` is brand ``n``; the
brands past ``sizes.advertisers`` sell but do not advertise), their campaigns and SKU
bids, loyalty shoppers and per-store stock. Everything comes from ``seed``: the same
seed and sizes give byte-identical records (no wall clock, no set iteration order).

``load`` writes it with non-transactional pipelines and announces a ``reload`` on the
change feed. It is meant for an empty store (see ``is_empty``): it overwrites the keys
it writes and deletes nothing. Advertiser ``n`` authenticates with the API key
``f"{DEMO_API_KEY_PREFIX}{n}"`` (the README's curl tour uses ``ek_demo_1``).

Bid count: ``sum(len(c.bids))`` equals ``sizes.bids`` exactly, unless that is fewer
than one bid per campaign (then every campaign gets one) or more than the advertisers'
catalogues allow without repeating a SKU in a campaign (then it is that capacity).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from itertools import product as cartesian
from typing import Literal

import msgspec
import numpy as np
import redis

from exchange import apikeys, keys
from exchange.advertisers import AdvertiserRecord, hash_key
from exchange.advertisers import encode_record as encode_advertiser
from exchange.campaigns import BidRecord, CampaignRecord, FrequencyCap, Pacing, Status
from exchange.campaigns import encode_record as encode_campaign
from exchange.catalog import ProductRecord
from exchange.catalog import encode_record as encode_product
from exchange.changes import FEED_MAXLEN
from exchange.stock import ONLINE, encode_quantities

DEMO_API_KEY_PREFIX = "ek_demo_"

PIPELINE_CHUNK = 5_000          # commands (or hash fields) per pipeline round trip
_HASH_FIELDS_PER_CMD = 500
_EPOCH_MS = 1_704_067_200_000   # 2024-01-01T00:00Z: campaign timestamps count from here
_DAY_MS = 86_400_000
_BRAND_ZIPF = 0.6               # catalogue size of brand rank r ∝ r**-0.6
_MICROS = 1_000_000


class DemoSizes(msgspec.Struct, kw_only=True):
    products: int = 50_000
    campaigns: int = 5_000
    bids: int = 100_000        # total SKU bids across campaigns
    advertisers: int = 2_000   # = brands that advertise
    shoppers: int = 100_000
    stores: int = 50


class DemoData(msgspec.Struct, kw_only=True, eq=False):
    """The generated retailer. ``stock[store][pid]`` is the quantity (index 0 unused)."""

    sizes: DemoSizes
    seed: int
    products: list[ProductRecord]
    advertisers: list[AdvertiserRecord]
    campaigns: list[CampaignRecord]
    shoppers: list[tuple[str, list[str]]]
    stores: list[str]
    stock: dict[str, np.ndarray]


# --- the category tree --------------------------------------------------------------------
# Subcategory spec: "price lo-hi | suppress-purchased days | sizes | variants | leaves".
# A leaf is "Name[=Title noun][:synonym,synonym]"; the title noun defaults to the name.
# Durable goods suppress a bought product for 30 or 180 days, consumables for 7.
_TREE: dict[str, tuple[float, str, dict[str, str]]] = {
    "Produce": (3, "Farms,Orchards,Harvest,Growers,Fresh", {
        "Fresh Fruit": "0.99-7.99|7|1 lb,2 lb,3 lb Bag,Each|Organic,Fresh,Jumbo,Seedless,Sweet,Local|Apples:apple,fruit;Bananas:banana,fruit;Berries=Strawberries:berries,strawberry;Citrus=Oranges:citrus,orange;Grapes:grape,fruit",  # noqa: E501
        "Fresh Vegetables": "0.79-5.99|7|1 lb,2 lb,5 lb Bag,Each|Organic,Fresh,Baby,Sweet,Local,Red|Leafy Greens=Spinach:salad greens,spinach;Tomatoes:tomato;Potatoes:potato,spuds;Onions:onion;Peppers=Bell Peppers:pepper,capsicum",  # noqa: E501
        "Salads & Herbs": "1.99-6.99|7|4 oz,5 oz,10 oz,Family Size|Caesar,Asian Sesame,Organic,Southwest,Greek|Salad Kits=Salad Kit:chopped salad,salad;Fresh Herbs=Basil:herbs,cilantro;Microgreens:sprouts,greens",  # noqa: E501
    }),
    "Dairy & Eggs": (5, "Creamery,Dairy,Farms,Organics,Pastures", {
        "Milk": "0.99-6.99|7|1L,2L,Half Gallon,1 Gal|Whole,Reduced Fat,Organic,Barista Edition,Unsweetened,Vanilla,Chocolate|Whole Milk=Milk:dairy milk,whole milk;Oat Milk:oat drink,dairy free milk;Almond Milk:almond beverage,nut milk;Soy Milk:soy beverage,dairy free milk;Lactose-Free Milk:lactose free",  # noqa: E501
        "Cheese": "1.99-12.99|7|6 oz,8 oz,12 oz,1 lb|Sharp,Mild,Aged,Smoked,Shredded,Sliced,Organic|Cheddar=Cheddar Cheese:cheddar,cheese;Mozzarella:pizza cheese,fresh mozzarella;Parmesan:parmigiano,grated cheese;Cream Cheese:cream cheese spread,bagel spread;Plant-Based Cheese=Vegan Cheese:dairy free cheese",  # noqa: E501
        "Yogurt": "0.89-7.99|7|5.3 oz,4-Pack,24 oz,32 oz|Plain,Vanilla,Strawberry,Blueberry,Honey,Peach,Low Fat|Greek Yogurt:greek yoghurt,high protein yogurt;Kids Yogurt=Yogurt Tubes:kids yogurt,yogurt;Drinkable Yogurt=Kefir:probiotic drink,drinkable yogurt;Dairy-Free Yogurt=Oat Yogurt:vegan yogurt,yogurt",  # noqa: E501
        "Eggs & Butter": "1.99-8.99|7|6 ct,12 ct,18 ct,16 oz|Free Range,Organic,Pasture Raised,Cage Free,Salted,Unsalted|Eggs=Large Eggs:eggs,dozen eggs;Butter:salted butter,unsalted butter;Plant Butter=Plant-Based Butter:vegan butter,margarine",  # noqa: E501
    }),
    "Meat & Seafood": (3, "Ranch,Butchers,Farms,Provisions,Smokehouse", {
        "Beef": "4.99-24.99|7|1 lb,2 lb,3 lb,Family Pack|Grass-Fed,Angus,Choice,Organic,Lean|Ground Beef:hamburger meat,minced beef;Steaks=Ribeye Steak:steak,ribeye;Roasts=Chuck Roast:pot roast,beef roast",  # noqa: E501
        "Poultry": "3.99-16.99|7|1 lb,2 lb,3 lb,Family Pack|Organic,Free Range,Air Chilled,Boneless,Skinless|Chicken Breasts:chicken breast,boneless chicken;Chicken Thighs:thighs,chicken;Whole Chicken:roaster,roast chicken;Ground Turkey:turkey mince",  # noqa: E501
        "Seafood": "5.99-24.99|7|8 oz,12 oz,1 lb,2 lb|Wild Caught,Farm Raised,Frozen,Skinless,Smoked,Jumbo|Salmon=Salmon Fillets:salmon,fish;Shrimp:prawns,seafood;White Fish=Cod Fillets:cod,white fish",  # noqa: E501
        "Deli & Bacon": "2.99-12.99|7|6 oz,8 oz,12 oz,16 oz|Hickory Smoked,Thick Cut,Honey,Uncured,Low Sodium,Peppered|Bacon:bacon strips;Deli Turkey=Sliced Turkey:deli turkey,lunch meat;Sausages:sausage,bratwurst;Plant-Based Meat=Plant-Based Burger:vegan burger,meat alternative",  # noqa: E501
    }),
    "Bakery": (2, "Bakehouse,Bakery,Ovens,Mill", {
        "Bread": "1.99-6.99|7|16 oz,20 oz,24 oz,Loaf|Whole Wheat,Multigrain,Sourdough,White,Seeded,Gluten-Free,Honey Oat|Sandwich Bread:bread,sliced bread;Artisan Bread=Artisan Loaf:sourdough,rustic bread;Bagels:bagel;Tortillas:wraps,tortilla",  # noqa: E501
        "Sweet Bakery": "2.49-12.99|7|4 ct,6 ct,12 ct,Family Size|Chocolate,Blueberry,Cinnamon,Lemon,Vanilla,Red Velvet|Muffins:muffin;Cookies=Bakery Cookies:cookies,cookie;Cakes=Layer Cake:cake,birthday cake;Croissants:croissant,pastry",  # noqa: E501
    }),
    "Pantry": (8, "Foods,Pantry,Kitchen,Provisions,& Co.", {
        "Pasta & Rice": "0.99-6.99|7|12 oz,16 oz,2 lb,5 lb|Organic,Whole Wheat,Gluten-Free,Bronze Cut,Protein,Jasmine,Basmati|Spaghetti:pasta,noodles;Penne:pasta,macaroni;Rice=Long Grain Rice:rice,white rice;Quinoa:grain,superfood;Egg Noodles:noodles",  # noqa: E501
        "Sauces & Condiments": "1.49-8.99|7|12 oz,16 oz,24 oz,32 oz|Classic,Spicy,Garlic,Tomato Basil,Organic,Reduced Sugar,Chipotle,Smoky|Pasta Sauce:marinara,tomato sauce;Ketchup:tomato ketchup;Mustard:dijon;Mayonnaise:mayo;Hot Sauce:chili sauce,sriracha;BBQ Sauce:barbecue sauce",  # noqa: E501
        "Canned Goods": "0.79-4.99|7|10 oz,15 oz,28 oz,4-Pack|Low Sodium,Organic,No Salt Added,Diced,Whole,Chunky|Canned Tomatoes=Diced Tomatoes:canned tomatoes;Beans=Black Beans:canned beans,beans;Soup=Chicken Noodle Soup:soup;Tuna=Canned Tuna:tuna,tinned fish",  # noqa: E501
        "Breakfast": "1.99-8.99|7|12 oz,18 oz,24 oz,Family Size|Honey,Cinnamon,Original,Whole Grain,Chocolate,Berry,Maple,Protein|Cereal=Breakfast Cereal:cereal;Oatmeal=Rolled Oats:oatmeal,porridge;Granola:granola clusters,muesli;Pancake Mix:pancake,waffle mix;Peanut Butter:nut butter;Jam=Fruit Spread:jam,jelly;Maple Syrup:syrup",  # noqa: E501
        "Baking": "1.29-9.99|7|12 oz,1 lb,2 lb,5 lb|Organic,Unbleached,Pure,Dark,Light,Gluten-Free|Flour=All-Purpose Flour:flour;Sugar=Cane Sugar:sugar;Baking Chips=Chocolate Chips:baking chips;Baking Mixes=Brownie Mix:cake mix,brownie mix;Spices=Ground Cinnamon:spices,seasoning",  # noqa: E501
    }),
    "Snacks": (6, "Snacks,Snack Co.,Crunch,Bites,Treats", {
        "Chips & Crisps": "1.99-6.49|7|1 oz,5 oz,8 oz,Family Size|Sea Salt,Barbecue,Sour Cream & Onion,Salt & Vinegar,Jalapeno,Cheddar,Kettle Cooked|Potato Chips:chips,crisps;Tortilla Chips:nacho chips,chips;Pretzels:pretzel;Popcorn:popped corn",  # noqa: E501
        "Cookies & Crackers": "1.99-5.99|7|7 oz,10 oz,13 oz,Family Size|Chocolate Chip,Oatmeal Raisin,Double Chocolate,Vanilla,Whole Grain,Everything,Honey|Crackers:cracker;Sandwich Cookies:cookies,cookie;Graham Crackers:graham;Rice Cakes:rice cake",  # noqa: E501
        "Nuts & Bars": "1.49-12.99|7|1.4 oz,5-Pack,12-Pack,16 oz|Honey Roasted,Salted,Dark Chocolate,Peanut Butter,Almond,Chocolate Chip,Sea Salt Caramel|Protein Bars:protein bar,energy bar;Granola Bars:granola bar,snack bar;Mixed Nuts:nuts,trail mix;Almonds:almond,nuts",  # noqa: E501
        "Candy": "0.99-8.99|7|1.5 oz,3.5 oz,10 oz,Share Size|Milk Chocolate,Dark Chocolate,Sour,Fruity,Peppermint,Caramel,Sugar Free|Chocolate Bars=Chocolate Bar:chocolate,candy bar;Gummies=Gummy Bears:gummies,gummy candy;Mints:breath mints;Chewing Gum:gum",  # noqa: E501
    }),
    "Beverages": (6, "Roasters,Beverage Co.,Springs,Brewing,Drinks", {
        "Coffee": "3.99-18.99|7|10 oz,12 oz,24 oz,12 ct,24 ct|Medium Roast,Dark Roast,Light Roast,Espresso,Decaf,French Roast,Colombian,Breakfast Blend|Ground Coffee:coffee,ground coffee;Whole Bean Coffee:coffee beans,whole bean;Coffee Pods:k-cups,coffee capsules;Cold Brew=Cold Brew Coffee:cold brew,iced coffee;Instant Coffee:instant,coffee",  # noqa: E501
        "Tea": "2.49-9.99|7|20 ct,40 ct,100 ct,16 oz|Green,Black,Chamomile,Earl Grey,Peppermint,Chai,Matcha,Oolong|Tea Bags:tea;Loose Leaf Tea:loose tea,tea;Iced Tea:sweet tea,bottled tea;Kombucha:fermented tea,probiotic drink",  # noqa: E501
        "Soft Drinks & Water": "0.99-12.99|7|12 oz,1L,2L,12-Pack,24-Pack|Original,Zero Sugar,Diet,Cherry,Lemon Lime,Orange,Grapefruit,Berry|Cola:soda,soft drink;Sparkling Water:seltzer,fizzy water;Bottled Water=Spring Water:water;Energy Drinks=Energy Drink:energy,caffeine;Sports Drinks=Sports Drink:electrolyte drink",  # noqa: E501
        "Juice": "1.99-7.99|7|12 oz,52 oz,64 oz,6-Pack|Not From Concentrate,No Pulp,Pulp,Organic,Low Sugar,Cold Pressed|Orange Juice:oj,juice;Apple Juice:juice;Smoothies=Fruit Smoothie:smoothie",  # noqa: E501
    }),
    "Frozen": (4, "Foods,Kitchen,Creamery,Freezer Co.", {
        "Frozen Meals": "2.49-11.99|7|10 oz,12 oz,Family Size,2-Pack|Chicken,Beef,Vegetarian,Cheese,Spicy,Protein,Organic|Frozen Pizza:pizza;Frozen Dinners=Frozen Entree:tv dinner,frozen meal;Frozen Burritos=Burritos:burrito;Dumplings:potstickers,gyoza",  # noqa: E501
        "Frozen Treats": "2.99-8.99|7|1 pt,1.5 qt,6-Pack,12-Pack|Vanilla,Chocolate,Strawberry,Cookie Dough,Mint Chip,Salted Caramel,Coffee|Ice Cream:ice cream;Ice Cream Bars=Frozen Bars:popsicles,ice pops;Frozen Yogurt:froyo;Non-Dairy Frozen Dessert:vegan ice cream,dairy free ice cream",  # noqa: E501
        "Frozen Fruit & Vegetables": "1.99-6.99|7|10 oz,16 oz,32 oz,3 lb|Organic,Steamable,Mixed,Sweet,Petite|Frozen Vegetables:frozen veg,vegetables;Frozen Berries:frozen fruit,smoothie fruit;Frozen Fries=French Fries:fries,chips",  # noqa: E501
    }),
    "Household": (5, "Home,Clean Co.,Essentials,Labs,Works", {
        "Laundry": "3.99-29.99|7|32 loads,64 loads,96 loads,42 ct,81 ct|Free & Clear,Fresh Scent,Lavender,Spring Meadow,Original,Sensitive Skin,Oxi|Detergent Pods=Laundry Pods:detergent pods,laundry pacs;Liquid Detergent:laundry detergent;Fabric Softener:softener;Dryer Sheets:dryer sheet;Stain Remover:stain spray",  # noqa: E501
        "Cleaning": "1.99-14.99|7|16 oz,32 oz,2-Pack,3-Pack|Lemon,Lavender,Unscented,Disinfecting,Plant-Based,Citrus|All-Purpose Cleaner:cleaning spray,surface cleaner;Disinfecting Wipes:wipes,cleaning wipes;Dish Soap:dishwashing liquid;Dishwasher Tabs=Dishwasher Pods:dishwasher detergent;Glass Cleaner:window cleaner;Toilet Bowl Cleaner:toilet cleaner",  # noqa: E501
        "Paper & Plastic": "2.99-29.99|7|6 Rolls,12 Rolls,24 Rolls,30 ct,90 ct|Ultra Soft,Ultra Strong,Mega Roll,Select-A-Size,Recycled,Heavy Duty|Paper Towels:kitchen roll;Toilet Paper:bath tissue,toilet tissue;Trash Bags:garbage bags,bin liners;Food Storage Bags:zip bags,sandwich bags;Aluminum Foil:foil,tin foil",  # noqa: E501
        "Home Essentials": "2.99-24.99|30|1 ct,2-Pack,4-Pack,8-Pack|Lavender,Vanilla,Ocean Breeze,Pine,Citrus,Long Lasting|Air Fresheners=Air Freshener:room spray;Candles=Scented Candle:candle;Light Bulbs=LED Light Bulbs:led bulbs,light bulb;Batteries=AA Batteries:batteries,aa",  # noqa: E501
    }),
    "Personal Care": (5, "Beauty,Botanics,Skin,Labs,Naturals", {
        "Hair Care": "3.99-19.99|7|12 oz,16 oz,28 oz,2-Pack|Moisturizing,Volumizing,Anti-Dandruff,Color Safe,Curl Defining,Argan Oil,Tea Tree,Sulfate-Free|Shampoo:hair wash;Conditioner:hair conditioner;Hair Styling=Styling Gel:hair gel,pomade;Dry Shampoo:hair refresher",  # noqa: E501
        "Oral Care": "1.99-14.99|7|4 oz,2-Pack,3-Pack,4-Pack|Whitening,Sensitive,Fresh Mint,Cavity Protection,Charcoal,Kids,Enamel Repair|Toothpaste:dental care;Toothbrushes=Toothbrush:manual toothbrush;Mouthwash:mouth rinse;Dental Floss:floss",  # noqa: E501
        "Skin Care": "4.99-39.99|7|1 oz,1.7 oz,8 oz,16 oz|Hydrating,Fragrance-Free,Vitamin C,Retinol,SPF 30,SPF 50,Sensitive,Hyaluronic|Face Moisturizer:moisturiser,face cream;Body Lotion:lotion,moisturizer;Sunscreen:sun cream,spf;Face Wash:cleanser,facial cleanser",  # noqa: E501
        "Bath & Body": "1.99-14.99|7|3-Pack,12 oz,18 oz,30 oz|Shea Butter,Coconut,Eucalyptus,Oatmeal,Unscented,Sport,Charcoal|Body Wash:shower gel;Bar Soap:soap;Deodorant:antiperspirant;Razors=Razor:shaving,razor blades",  # noqa: E501
    }),
    "Health": (3, "Health,Wellness,Pharma,Vital,Labs", {
        "Vitamins": "3.99-29.99|30|30 ct,60 ct,100 ct,200 ct|Gummies,Adult,Kids,Chewable,Once Daily,Extra Strength|Multivitamins=Multivitamin:vitamins;Vitamin D=Vitamin D3:vitamin d;Vitamin C:immune support;Probiotics=Probiotic:gut health",  # noqa: E501
        "Medicine": "3.99-24.99|30|24 ct,50 ct,100 ct,4 oz|Extra Strength,Non-Drowsy,Liquid Gels,Kids,Nighttime,Rapid Release|Pain Relievers=Pain Reliever:ibuprofen,pain relief;Allergy Relief:antihistamine,allergy;Cold & Flu=Cold & Flu Relief:cold medicine;Antacids=Antacid:heartburn relief",  # noqa: E501
        "First Aid": "2.99-49.99|180|30 ct,60 ct,100 ct,Travel Size|Waterproof,Flexible Fabric,Kids,Sensitive Skin,Digital|Bandages:plasters,band-aids;First Aid Kits=First Aid Kit:emergency kit;Thermometers=Digital Thermometer:thermometer",  # noqa: E501
    }),
    "Baby": (3, "Baby,Little Ones,Kids,Nursery", {
        "Diapers": "8.99-49.99|7|28 ct,84 ct,152 ct,Jumbo Pack|Overnight,Sensitive,Hypoallergenic,Eco,Ultra Dry,Plant-Based|Newborn=Diapers Newborn:diapers,nappies;Size 1=Diapers Size 1:diapers,nappies;Size 2=Diapers Size 2:diapers,nappies;Size 3=Diapers Size 3:diapers,nappies;Size 4=Diapers Size 4:diapers,nappies;Size 5=Diapers Size 5:diapers,nappies;Size 6=Diapers Size 6:diapers,nappies;Training Pants:pull-ups,potty training",  # noqa: E501
        "Baby Care": "2.99-14.99|7|72 ct,3-Pack,8 oz,16 oz|Fragrance-Free,Sensitive,Lavender,Water-Based,Gentle|Baby Wipes:wipes;Diaper Cream:rash cream;Baby Lotion:lotion;Baby Wash:baby shampoo",  # noqa: E501
        "Feeding": "1.49-39.99|7|4 oz,8 oz,12-Pack,2-Pack|Organic,Stage 1,Stage 2,Stage 3,Sensitive,Gentle|Infant Formula:formula,baby milk;Baby Food=Baby Food Pouches:puree,baby food;Baby Bottles=Baby Bottle:feeding bottle;Sippy Cups=Sippy Cup:toddler cup",  # noqa: E501
        "Baby Gear": "59-899|180|Black,Grey,Navy,Sand|Lightweight,Convertible,All-Terrain,Travel System,Compact|Strollers=Stroller:pram,pushchair;Car Seats=Convertible Car Seat:car seat;Baby Monitors=Video Baby Monitor:baby monitor",  # noqa: E501
    }),
    "Pet": (4, "Pet,Paws,Pet Co.,Tails,Companion", {
        "Dog": "1.99-69.99|7|6 oz,3 lb,15 lb,30 lb,12-Pack|Chicken & Rice,Lamb,Salmon,Grain-Free,Puppy,Senior,Small Breed,Large Breed|Dry Dog Food:dog food,kibble;Wet Dog Food:canned dog food,dog food;Dog Treats:dog treat,dog biscuits;Dental Chews=Dog Dental Chews:dog chews",  # noqa: E501
        "Cat": "1.49-39.99|7|3 oz,3 lb,7 lb,14 lb,12-Pack|Chicken,Tuna,Salmon,Indoor,Kitten,Hairball Control,Unscented|Dry Cat Food:cat food,kibble;Wet Cat Food:canned cat food,cat food;Cat Litter=Clumping Cat Litter:litter,kitty litter;Cat Treats:cat treat",  # noqa: E501
        "Small Pets & Fish": "2.49-24.99|7|2 oz,1 lb,4 lb,10 lb|Tropical,Premium,Natural,Paper,Seed Mix|Fish Food=Fish Flakes:fish food,aquarium;Bird Seed:bird food,wild bird;Small Animal Bedding:hamster bedding,rabbit bedding",  # noqa: E501
        "Pet Care": "4.99-59.99|30|1 ct,3-Pack,6-Pack,16 oz|Small Dog,Large Dog,Cat,Oatmeal,Unscented,Lavender|Flea & Tick=Flea & Tick Treatment:flea treatment;Pet Shampoo:dog shampoo;Waste Bags=Dog Waste Bags:poop bags",  # noqa: E501
    }),
    "Electronics": (5, "Audio,Tech,Labs,Electronics,Digital,Systems", {
        "TV & Video": "199-2499|180|43\",50\",55\",65\",77\",85\"|4K UHD,4K Smart,120Hz,Gaming,Pro,Ultra Slim|OLED TVs=OLED TV:oled,television,tv;QLED TVs=QLED TV:qled,television,tv;LED TVs=4K LED TV:led tv,television;Mini-LED TVs=Mini-LED TV:mini led,television",  # noqa: E501
        "Audio": "19.99-499|180|Black,White,Navy,Sand,Red|Wireless,Noise Cancelling,Bluetooth,Sport,Studio,Pro,Mini|Headphones:over-ear headphones,headset;Earbuds=Wireless Earbuds:earphones,in-ear;Bluetooth Speakers=Portable Speaker:bluetooth speaker,speaker;Soundbars=Soundbar:sound bar,home theater",  # noqa: E501
        "Computers & Tablets": "149-2499|180|128GB,256GB,512GB,1TB|13-inch,14-inch,15.6-inch,16-inch,Pro,Slim,Gaming|Laptops=Laptop:notebook,laptop computer;Tablets=Tablet:ipad,tablet computer;Monitors=Monitor:computer monitor,display;Chromebooks=Chromebook:laptop",  # noqa: E501
        "Phone Accessories": "9.99-99.99|30|Black,Clear,Blue,Pink,White|Fast,Wireless,MagSafe Compatible,Rugged,Slim,USB-C|Phone Cases=Phone Case:case,cover;Chargers=Wall Charger:charger,charging;Charging Cables=USB-C Cable:cable,charging cable;Power Banks=Power Bank:portable charger",  # noqa: E501
        "Smart Home": "24.99-249.99|180|1-Pack,2-Pack,4-Pack,Starter Kit|Wi-Fi,Indoor,Outdoor,2K,Battery,Color|Smart Plugs=Smart Plug:wifi plug;Security Cameras=Security Camera:camera,cctv;Video Doorbells=Video Doorbell:doorbell camera;Smart Speakers=Smart Speaker:voice assistant;Smart Bulbs=Smart Bulb:smart light",  # noqa: E501
        "Gaming": "19.99-599|180|Standard,Deluxe Edition,Bundle,Limited Edition|Wireless,RGB,Pro,Elite,Retro,Next-Gen|Video Games=Video Game:game;Controllers=Wireless Controller:gamepad,controller;Gaming Headsets=Gaming Headset:headset;Consoles=Game Console:console",  # noqa: E501
    }),
    "Home & Kitchen": (5, "Home,Kitchen,Living,House,Goods", {
        "Small Appliances": "24.99-499|180|Black,Stainless Steel,White,Red|Programmable,Compact,Digital,Pro,XL,Smart|Coffee Makers=Coffee Maker:coffee machine,drip coffee;Espresso Machines=Espresso Machine:espresso;Air Fryers=Air Fryer:airfryer;Blenders=Blender:smoothie maker;Toasters=Toaster:toaster oven;Stand Mixers=Stand Mixer:mixer",  # noqa: E501
        "Cookware": "14.99-299|180|Small,Medium,Large,Family Size|Nonstick,Stainless Steel,Cast Iron,Ceramic,Hard-Anodized,Induction|Frying Pans=Frying Pan:skillet,fry pan;Cookware Sets=Cookware Set:pots and pans;Dutch Ovens=Dutch Oven:casserole;Bakeware=Baking Sheet:sheet pan",  # noqa: E501
        "Bedding & Bath": "14.99-199|180|Twin,Full,Queen,King|Cotton,Linen,Microfiber,Bamboo,Cooling,Percale|Sheets=Sheet Set:bed sheets;Comforters=Comforter:duvet,quilt;Pillows=Bed Pillow:pillow;Bath Towels=Bath Towel Set:towels",  # noqa: E501
        "Storage": "9.99-89.99|30|Small,Medium,Large,3-Pack|Clear,Stackable,Bamboo,Collapsible,Woven|Storage Bins=Storage Bin:storage box;Food Containers=Food Storage Containers:meal prep containers;Hangers=Velvet Hangers:hangers",  # noqa: E501
        "Floor Care": "49-799|180|Black,Grey,Purple,White|Cordless,Robot,Upright,Pet Hair,Lightweight,HEPA|Stick Vacuums=Stick Vacuum:vacuum cleaner,cordless vacuum;Robot Vacuums=Robot Vacuum:robovac;Upright Vacuums=Upright Vacuum:vacuum;Carpet Cleaners=Carpet Cleaner:shampooer",  # noqa: E501
    }),
    "Toys & Games": (3, "Toys,Play,Games,Toy Co.,Fun", {
        "Building Toys": "9.99-199|30|250 pcs,500 pcs,1000 pcs,Starter Set|Classic,City,Space,Castle,Creative,STEM|Building Sets=Building Set:building blocks,construction toy;Magnetic Tiles:magnet tiles",  # noqa: E501
        "Games & Puzzles": "9.99-49.99|30|500 pcs,1000 pcs,Family Edition,Travel Edition|Strategy,Party,Classic,Cooperative,Kids,Trivia|Board Games=Board Game:family game;Jigsaw Puzzles=Jigsaw Puzzle:puzzle;Card Games=Card Game:cards",  # noqa: E501
        "Dolls & Figures": "9.99-79.99|30|6-inch,12-inch,Deluxe Set,Playset|Fashion,Superhero,Princess,Dinosaur,Collector|Dolls=Doll:fashion doll;Action Figures=Action Figure:figure;Plush Toys=Plush Toy:stuffed animal,teddy",  # noqa: E501
        "Outdoor Play": "19.99-299|180|12-inch,16-inch,20-inch,Ages 5+|Balance,Foldable,Light-Up,Pro,Splash|Bikes=Kids Bike:bicycle;Scooters=Kick Scooter:scooter;Water Toys=Water Blaster:water gun,pool toys",  # noqa: E501
    }),
    "Sports & Outdoors": (3, "Outdoors,Athletics,Sport,Gear,Trail", {
        "Fitness": "9.99-399|180|Compact,Standard,Heavy,Pro Set|Essential,Premium,Studio,Eco,Home Gym,Non-Slip|Dumbbells=Dumbbell Set:weights,dumbbells;Yoga Mats=Yoga Mat:exercise mat;Resistance Bands:exercise bands;Kettlebells=Kettlebell:weights",  # noqa: E501
        "Camping": "19.99-399|180|Compact,Standard,Large,XL|Ultralight,Waterproof,Portable,Family,Backpacking|Tents=Tent:camping tent;Sleeping Bags=Sleeping Bag:camping;Coolers=Cooler:ice chest;Camp Chairs=Camp Chair:folding chair",  # noqa: E501
        "Sports Nutrition": "14.99-59.99|7|1 lb,2 lb,5 lb,20 Servings|Chocolate,Vanilla,Cookies & Cream,Unflavored,Strawberry,Mocha|Protein Powder=Whey Protein Powder:protein,whey;Plant Protein=Plant Protein Powder:vegan protein;Pre-Workout:preworkout;Creatine=Creatine Monohydrate:creatine",  # noqa: E501
        "Hydration": "9.99-49.99|30|18 oz,24 oz,32 oz,40 oz|Insulated,Stainless Steel,Leakproof,Straw Lid,Chug Lid|Water Bottles=Water Bottle:bottle,reusable bottle;Tumblers=Insulated Tumbler:tumbler,travel mug",  # noqa: E501
    }),
    "Clothing & Shoes": (3, "Apparel,Threads,Supply,Outfitters,Wear", {
        "Basics": "7.99-39.99|30|S,M,L,XL|Black,White,Navy,Heather Grey,Olive,Crew Neck,V-Neck|T-Shirts=T-Shirt:tee;Socks=Crew Socks:socks;Underwear=Boxer Briefs:underwear;Leggings:yoga pants",  # noqa: E501
        "Shoes": "29.99-149.99|180|Size 7,Size 8,Size 9,Size 10,Size 11|Black,White,Grey,Navy,Running,Walking,Slip-On|Running Shoes:sneakers,trainers;Slippers:house shoes;Sandals:flip flops",  # noqa: E501
    }),
}

# Campaigns in these departments/subcategories sometimes target a matching segment.
_SEGMENT_HINTS = {
    "Pet > Dog": "pet_owner_dog", "Pet > Cat": "pet_owner_cat", "Baby": "new_parent",
    "Beverages > Coffee": "coffee_lover", "Beverages > Tea": "tea_drinker",
    "Electronics": "tech_enthusiast", "Electronics > Gaming": "gamer",
    "Sports & Outdoors": "fitness_enthusiast", "Personal Care": "beauty_enthusiast",
    "Dairy & Eggs > Milk": "vegan", "Pantry > Baking": "baker", "Snacks": "snack_lover",
    "Produce": "health_conscious", "Health": "health_conscious",
}

SEGMENTS: tuple[tuple[str, float], ...] = (  # loyalty segment, relative frequency
    ("bargain_hunter", 9), ("coupon_user", 7), ("frequent_shopper", 8), ("weekly_stocker", 6),
    ("premium_tier", 3), ("loyalty_gold", 4), ("loyalty_silver", 6), ("new_customer", 4),
    ("lapsed_90d", 5), ("lapsed_180d", 3), ("online_only", 4), ("click_and_collect", 5),
    ("vegan", 2), ("vegetarian", 3), ("gluten_free", 2), ("keto", 2), ("organic_buyer", 4),
    ("health_conscious", 6), ("fitness_enthusiast", 4), ("new_parent", 3),
    ("expecting_parent", 1), ("parent_toddler", 3), ("parent_school_age", 5),
    ("pet_owner_dog", 6), ("pet_owner_cat", 5), ("coffee_lover", 7), ("tea_drinker", 3),
    ("home_cook", 6), ("baker", 3), ("snack_lover", 6), ("entertainer", 2),
    ("tech_enthusiast", 3), ("gamer", 2), ("outdoor_enthusiast", 3), ("beauty_enthusiast", 4),
    ("eco_conscious", 3), ("brand_loyal", 4), ("student", 3), ("senior", 4),
    ("large_household", 4), ("single_household", 5),
)

_STATUSES: tuple[Status, ...] = ("active", "paused", "draft")
_PACINGS: tuple[Pacing, ...] = ("even", "traffic_shaped", "asap")
_CAP_PERIODS: tuple[Literal["hour", "day", "week"], ...] = ("day", "day", "week", "hour")
_CAMPAIGN_THEMES = (
    "Always On", "Search Boost", "New Launch", "Spring Push", "Summer Sale", "Back to School",
    "Holiday", "Q1 Promo", "Q3 Promo", "Brand Defense", "Conquest", "Weekend Deals",
    "Clearance", "Top Sellers", "Bundle Push",
)
_FIRST = "b br c cl cr d dr f fl fr g gr h j k l m n p pr r s st t tr v w z".split()
_MID = "b d f g k l m n p r s t v z".split()
_VOWELS = "a e i o u a e o ai ea".split()
_LAST = ["", "", "", "n", "r", "l", "s", "x", "t"]
_ENDINGS = "a o ia ly ix io on era ana ina us".split()


class _Leaf(msgspec.Struct, frozen=True):
    path: str                  # "Dairy & Eggs > Milk > Oat Milk"
    department: str
    subcategory: str
    noun: str
    synonyms: tuple[str, ...]
    sizes: tuple[str, ...]
    variants: tuple[str, ...]
    price_lo: float
    price_hi: float
    suppress_days: int


def _leaves() -> list[_Leaf]:
    out: list[_Leaf] = []
    for dept, (_weight, _suffixes, subs) in _TREE.items():
        for sub, spec in subs.items():
            price, suppress, sizes, variants, leaves = spec.split("|")
            lo, hi = (float(x) for x in price.split("-"))
            for leaf in leaves.split(";"):
                head, _, syn = leaf.partition(":")
                name, _, noun = head.partition("=")
                out.append(_Leaf(
                    path=f"{dept} > {sub} > {name}",
                    department=dept,
                    subcategory=sub,
                    noun=noun or name,
                    synonyms=tuple(s for s in syn.split(",") if s),
                    sizes=tuple(sizes.split(",")),
                    variants=tuple(variants.split(",")),
                    price_lo=lo,
                    price_hi=hi,
                    suppress_days=int(suppress),
                ))
    return out


LEAVES: list[_Leaf] = _leaves()


# --- brands ---------------------------------------------------------------------------------
def _brand_names(count: int, rnd: random.Random, departments: list[str]) -> list[str]:
    """``count`` unique pronounceable names; ``departments[i]`` flavours name ``i``'s suffix."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        dept = departments[len(names)]
        syllables = rnd.choices((1, 2, 3), weights=(2, 6, 2))[0]
        word = rnd.choice(_FIRST) + rnd.choice(_VOWELS)
        for _ in range(syllables - 1):
            word += rnd.choice(_MID) + rnd.choice(_VOWELS)
        word += rnd.choice(_LAST)
        if word[-1] not in "aeiou" and rnd.random() < 0.3:
            word += rnd.choice(_ENDINGS)
        if not 4 <= len(word) <= 11:
            continue
        word = word.capitalize()
        if rnd.random() < 0.4:
            word = f"{word} {rnd.choice(_TREE[dept][1].split(','))}"
        if word.lower() not in seen:
            seen.add(word.lower())
            names.append(word)
    return names


# --- generation -----------------------------------------------------------------------------
def _shelf_prices(units: np.ndarray) -> np.ndarray:
    """Shelf-style prices (3.49, 24.99, 1,249.99) in micro-units."""
    cents = np.where(
        units < 20,
        np.maximum(49, np.floor(units * 10) * 10 + 9),
        np.where(units < 200, np.floor(units) * 100 + 99, np.floor(units / 10) * 1000 + 999),
    )
    return cents.astype(np.int64) * 10_000


def _products(
    sizes: DemoSizes, rnd: random.Random, rng: np.random.Generator
) -> tuple[list[ProductRecord], list[str], dict[str, list[int]], list[_Leaf]]:
    """Products (pid order shuffled), brand names, brand -> pids, and each pid's leaf."""
    n = sizes.products
    n_brands = max(1, sizes.advertisers + math.ceil(sizes.advertisers / 4))
    depts = list(_TREE)
    dept_w = [_TREE[d][0] for d in depts]
    brand_dept = rnd.choices(depts, weights=dept_w, k=n_brands)
    names = _brand_names(n_brands, rnd, brand_dept)
    by_dept: dict[str, list[_Leaf]] = {d: [] for d in depts}
    for leaf in LEAVES:
        by_dept[leaf.department].append(leaf)

    # Catalogue size per brand: one each first, the rest Zipf by rank (brand 1 biggest).
    counts = np.zeros(n_brands, dtype=np.int64)
    counts[: min(n, n_brands)] = 1
    if n > n_brands:
        weights = np.arange(1, n_brands + 1, dtype=np.float64) ** -_BRAND_ZIPF
        counts += rng.multinomial(n - n_brands, weights / weights.sum())

    slots: list[tuple[int, _Leaf, int]] = []  # (brand index, leaf, k-th product of the pair)
    for b in range(n_brands):
        c = int(counts[b])
        if not c:
            continue
        pool = by_dept[brand_dept[b]]
        home = rnd.choice(pool)
        ranked = sorted((lf.subcategory != home.subcategory, rnd.random(), i)
                        for i, lf in enumerate(pool))
        related = [pool[i] for *_, i in ranked]
        n_leaves = min(c, rnd.randint(1, 3) + (c >= 200) * min(5, c // 200), len(related))
        mine = related[:n_leaves]
        split = rnd.choices(range(n_leaves), weights=[1 / (i + 1) for i in range(n_leaves)], k=c)
        split[:n_leaves] = range(n_leaves)  # every chosen leaf gets at least one product
        seen: dict[int, int] = {}
        for li in sorted(split):
            k = seen.get(li, 0)
            seen[li] = k + 1
            slots.append((b, mine[li], k))
    order = rng.permutation(len(slots))
    slot_b = np.array([slots[j][0] for j in order], dtype=np.int64)
    slot_leaf = [slots[j][1] for j in order]
    slot_k = [slots[j][2] for j in order]

    # Title = brand + variant + noun + size; a brand's k-th product in a leaf takes the k-th
    # of its shuffled (variant, size) combinations, then packs (or model generations).
    combos_cache: dict[tuple[int, str], list[tuple[int, int]]] = {}
    picks: list[tuple[int, int, int]] = []
    for b, leaf, k in zip(slot_b.tolist(), slot_leaf, slot_k, strict=True):
        key = (b, leaf.path)
        combos = combos_cache.get(key)
        if combos is None:
            combos = list(cartesian(range(len(leaf.variants)), range(len(leaf.sizes))))
            rnd.shuffle(combos)
            combos_cache[key] = combos
        vi, si = combos[k % len(combos)]
        picks.append((vi, si, k // len(combos)))
    si_arr = np.array([p[1] for p in picks], dtype=np.float64)
    pack = np.array([p[2] for p in picks], dtype=np.float64)
    durable = np.array([leaf.suppress_days >= 180 for leaf in slot_leaf])
    n_sizes = np.array([len(leaf.sizes) for leaf in slot_leaf], dtype=np.float64)
    lo = np.array([leaf.price_lo for leaf in slot_leaf])
    hi = np.array([leaf.price_hi for leaf in slot_leaf])
    tier = rng.random(n_brands)[slot_b]
    pos = 0.45 * tier + 0.45 * si_arr / np.maximum(1, n_sizes - 1)
    pos = np.clip(pos + rng.uniform(-0.1, 0.15, size=n), 0.0, 1.0)
    units = lo * (hi / lo) ** pos * np.where(durable | (pack == 0), 1.0, (pack + 1) * 0.9)
    prices = _shelf_prices(units).tolist()
    # Quality prior: log-normal, lifted for big (well-known) brands.
    bigness = 1.0 - np.log(np.arange(1, n_brands + 1)) / math.log(max(n_brands, 2))
    quality = 1e6 * np.exp(-1.3 + 0.5 * rng.normal(size=n) + 0.7 * bigness[slot_b])
    quality_ppm = np.clip(quality, 50_000, 1_000_000).astype(np.int64).tolist()

    leaf_keywords = {
        leaf.path: list(dict.fromkeys([*leaf.synonyms[:3], leaf.subcategory.lower()]))
        for leaf in LEAVES
    }
    products: list[ProductRecord] = []
    owned: dict[str, list[int]] = {}
    for i, (b, leaf, (vi, si, extra)) in enumerate(
        zip(slot_b.tolist(), slot_leaf, picks, strict=True)
    ):
        pid = i + 1
        size = leaf.sizes[si]
        if extra:
            size += f" Gen {extra + 1}" if durable[i] else f", {extra + 1}-Pack"
        sku = f"SKU-{pid:06d}"
        variant = leaf.variants[vi]
        if variant.lower() in leaf.noun.lower():  # no "Insulated Insulated Tumbler"
            variant = ""
        products.append(ProductRecord(
            pid=pid,
            sku=sku,
            title=f"{names[b]} {variant} {leaf.noun} {size}".replace("  ", " "),
            brand=names[b],
            category=leaf.path,
            price_micros=prices[i],
            image_url=f"/demo/img/{pid}.svg",
            landing_url=f"/demo/p/{sku}",
            keywords=list(leaf_keywords[leaf.path]),
            quality_ppm=quality_ppm[i],
        ))
        owned.setdefault(names[b], []).append(pid)
    return products, names, owned, slot_leaf


def _split_bids(total: int, raw: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Per-campaign SKU counts: at least 1, at most ``caps``, summing to ``total`` if it can,
    shaped like ``raw`` (water-filling: what a capped campaign cannot take goes to others)."""
    out = np.ones(len(raw), dtype=np.int64)
    remaining = min(total, int(caps.sum())) - len(raw)
    while remaining > 0:
        room = caps - out
        share = np.where(room > 0, raw, 0.0)
        if not share.any():
            break
        extra = np.minimum(np.floor(remaining * share / share.sum()).astype(np.int64), room)
        if not extra.any():
            top = np.argsort(-share, kind="stable")[:remaining]
            extra = np.zeros_like(out)
            extra[top[room[top] > 0]] = 1
        out += extra
        remaining -= int(extra.sum())
    return out


def _hint_segment(path: str) -> str | None:
    parts = path.split(" > ")
    return _SEGMENT_HINTS.get(" > ".join(parts[:2])) or _SEGMENT_HINTS.get(parts[0])


def _campaigns(
    sizes: DemoSizes,
    rnd: random.Random,
    rng: np.random.Generator,
    products: list[ProductRecord],
    names: list[str],
    owned: dict[str, list[int]],
    leaf_of: list[_Leaf],
    stores: list[str],
) -> list[CampaignRecord]:
    n_adv = sizes.advertisers
    eligible = [a for a in range(n_adv) if names[a] in owned]
    if not eligible or sizes.campaigns <= 0:
        return []
    weight = np.array([len(owned[names[a]]) for a in eligible], dtype=np.float64) ** 0.8
    if sizes.campaigns >= len(eligible):
        per = np.ones(len(eligible), dtype=np.int64)
        per += rng.multinomial(sizes.campaigns - len(eligible), weight / weight.sum())
        owners = np.repeat(np.array(eligible), per)
    else:
        owners = np.sort(rng.choice(eligible, sizes.campaigns, replace=False,
                                    p=weight / weight.sum()))
    c = len(owners)
    # Campaign size shape: a quarter tiny (1-5 SKUs), most mid-size, a fifth with 50+.
    mix = rng.random(c)
    raw = np.where(mix < 0.25, rng.uniform(1, 5, c),
                   np.where(mix < 0.8, rng.lognormal(math.log(15), 0.6, c),
                            np.exp(rng.uniform(math.log(50), math.log(400), c))))
    caps = np.array([len(owned[names[a]]) for a in owners], dtype=np.int64)
    counts = _split_bids(sizes.bids, raw, caps)
    created = sorted(rnd.randrange(0, 365 * _DAY_MS) for _ in range(c))
    order = rng.permutation(c)  # ids follow creation time, interleaving advertisers
    n_brands = len(names)
    prices = np.array([0, *(p.price_micros for p in products)], dtype=np.float64) / _MICROS
    aggressiveness = rng.lognormal(0, 0.2, size=c)
    noise = rng.lognormal(0, 0.25, size=int(counts.sum()))
    offset = 0
    out: list[CampaignRecord] = []
    for cid, j in enumerate(order, start=1):
        adv = int(owners[j])
        mine = owned[names[adv]]
        pids = rnd.sample(mine, int(counts[j]))
        leaves = [leaf_of[p - 1] for p in pids]
        # CPC grows with the price level: ~0.15 on a 2.00 item, ~1.60 on a 500.00 one.
        cpc = 0.10 * prices[pids] ** 0.45 * aggressiveness[j] * noise[offset : offset + len(pids)]
        offset += len(pids)
        cents = np.clip(np.round(cpc * 100), 15, 300).astype(np.int64) * 10_000
        bids = [
            BidRecord(products[pid - 1].sku, pid, bid)
            for pid, bid in zip(pids, cents.tolist(), strict=True)
        ]
        main = leaves[0]
        bigness = 1.0 - math.log(adv + 1) / math.log(max(n_brands, 2))
        daily = 20 * 100 ** min(1.0, 0.3 * bigness + 0.7 * rnd.random())
        daily_units = max(20, int(daily / 5) * 5)
        total = daily_units * rnd.choice((7, 14, 30, 60, 90)) if rnd.random() < 0.3 else 0
        keywords: list[str] = []
        if rnd.random() < 0.4:
            vocab = list(dict.fromkeys(
                phrase.lower()
                for leaf in leaves[:5]
                for phrase in (leaf.noun, *leaf.synonyms,
                               f"{rnd.choice(leaf.variants)} {leaf.noun}", names[adv])
            ))
            keywords = rnd.sample(vocab, min(len(vocab), rnd.randint(2, 6)))
        categories: list[str] = []
        if rnd.random() < 0.2:
            categories = list(dict.fromkeys(lf.path for lf in leaves[:2]))
        hint = _hint_segment(main.path)
        created_ms = _EPOCH_MS + created[cid - 1]
        out.append(CampaignRecord(
            id=cid,
            advertiser_id=adv + 1,
            name=f"{names[adv]} {main.noun} {rnd.choice(_CAMPAIGN_THEMES)}",
            kind="sponsored_product",
            status=rnd.choices(_STATUSES, weights=(90, 6, 4))[0],
            daily_budget_micros=daily_units * _MICROS,
            total_budget_micros=total * _MICROS,
            pacing=rnd.choices(_PACINGS, weights=(85, 10, 5))[0],
            bids=bids,
            keywords=keywords,
            categories=categories,
            segments_include=[hint] if hint and rnd.random() < 0.15 else [],
            # One campaign in ten bids up for its audience (off the main random stream,
            # so the rest of the demo is unchanged).
            segment_multipliers={hint: 1250 + 250 * (cid % 4)}
            if hint and cid * 2_654_435_761 % 100 < 10 else {},
            stores=sorted(rnd.sample(stores, min(len(stores), rnd.randint(3, 10))))
            if stores and rnd.random() < 0.05 else [],
            frequency_cap=FrequencyCap(
                impressions=rnd.choice((2, 3, 5, 10)),
                per=rnd.choice(_CAP_PERIODS),
            ) if rnd.random() < 0.2 else None,
            suppress_purchased_days=max(lf.suppress_days for lf in leaves),
            created_ms=created_ms,
            updated_ms=created_ms + rnd.randrange(0, 30 * _DAY_MS),
            version=1,
        ))
    return out


def _shoppers(count: int, rng: np.random.Generator) -> list[tuple[str, list[str]]]:
    if count <= 0:
        return []
    names = [s for s, _ in SEGMENTS]
    weights = np.array([w for _, w in SEGMENTS], dtype=np.float64)
    n_segs = rng.choice(7, size=count, p=[0.10, 0.20, 0.25, 0.20, 0.13, 0.08, 0.04])
    # Weighted sampling without replacement for all shoppers at once (Gumbel top-k) ...
    scores = np.log(weights)[None, :] + rng.gumbel(size=(count, len(names)))
    top = np.argsort(-scores, axis=1)[:, :6]
    member = np.zeros((count, len(names)), dtype=bool)
    for j in range(6):
        member[np.arange(count), top[:, j]] |= j < n_segs
    # ... then read each shopper's set in alphabetical order, row by row.
    alpha = np.argsort(names)
    rows, cols = np.nonzero(member[:, alpha])
    flat = [names[k] for k in alpha[cols].tolist()]
    ends = np.cumsum(np.bincount(rows, minlength=count)).tolist()
    starts = [0, *ends[:-1]]
    return [
        (f"shp_{i + 1:06d}", flat[a:b])
        for i, (a, b) in enumerate(zip(starts, ends, strict=True))
    ]


def _stock(
    products: list[ProductRecord], leaf_of: list[_Leaf], stores: list[str],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    n = len(products)
    quality = np.array([p.quality_ppm for p in products], dtype=np.float64) / 1e6
    durable = np.array([leaf.suppress_days >= 180 for leaf in leaf_of], dtype=bool)
    lam = np.where(durable, 4 + 16 * quality, 10 + 110 * quality)
    # Some products are only sold online: big-ticket items more often.
    online_only = rng.random(n) < np.where(durable, 0.10, 0.015)
    out: dict[str, np.ndarray] = {}
    for store in stores:
        qty = np.minimum(rng.poisson(lam * rng.uniform(0.6, 1.4)), 200)
        qty[online_only | (rng.random(n) < rng.uniform(0.03, 0.07))] = 0
        out[store] = np.concatenate(([0], qty)).astype(np.uint16)
    online = np.minimum(rng.poisson(lam * 3), 500)
    online[rng.random(n) < 0.02] = 0
    out[ONLINE] = np.concatenate(([0], online)).astype(np.uint16)
    return out


def generate(sizes: DemoSizes, seed: int = 7) -> DemoData:
    """The demo retailer for ``sizes``; deterministic in ``(sizes, seed)``."""
    rnd = random.Random(seed)
    rng = np.random.default_rng(seed)
    products, names, owned, leaf_of = _products(sizes, rnd, rng)
    stores = [f"S{i:03d}" for i in range(1, sizes.stores + 1)]
    campaigns = _campaigns(sizes, rnd, rng, products, names, owned, leaf_of, stores)
    advertisers = [
        AdvertiserRecord(
            id=i + 1,
            name=names[i],
            domain=re.sub(r"[^a-z0-9]+", "-", names[i].lower()).strip("-") + ".example",
            created_ms=_EPOCH_MS - rnd.randrange(30, 400) * _DAY_MS,
        )
        for i in range(sizes.advertisers)
    ]
    return DemoData(
        sizes=sizes,
        seed=seed,
        products=products,
        advertisers=advertisers,
        campaigns=campaigns,
        shoppers=_shoppers(sizes.shoppers, rng),
        stores=stores,
        stock=_stock(products, leaf_of, stores, rng),
    )


# --- loading --------------------------------------------------------------------------------
def _chunks(mapping: dict[str, bytes | str], size: int) -> Iterator[dict[str, bytes | str]]:
    items = list(mapping.items())
    for start in range(0, len(items), size):
        yield dict(items[start : start + size])


class _Writer:
    """A non-transactional pipeline flushed every ``PIPELINE_CHUNK`` writes."""

    def __init__(self, client: redis.Redis) -> None:
        self.pipe = client.pipeline(transaction=False)
        self.pending = 0
        self.commands = 0

    def wrote(self, weight: int = 1) -> None:
        self.pending += weight
        self.commands += 1
        if self.pending >= PIPELINE_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.pipe.execute()
            self.pending = 0


def load(client: redis.Redis, data: DemoData) -> dict[str, int]:
    """Write ``data`` into the store (keys in ``exchange.keys``); returns what was written."""
    w = _Writer(client)
    pipe = w.pipe

    def hash_fields(key: str, mapping: dict[str, bytes | str]) -> None:
        for chunk in _chunks(mapping, _HASH_FIELDS_PER_CMD):
            pipe.hset(key, mapping=chunk)
            w.wrote(len(chunk))

    hash_fields(keys.PRODUCTS, {str(p.pid): encode_product(p) for p in data.products})
    hash_fields(keys.PRODUCT_IDS, {p.sku: str(p.pid) for p in data.products})
    pipe.set(keys.SEQ_PRODUCT, len(data.products))
    w.wrote()

    hash_fields(keys.ADVERTISERS, {str(a.id): encode_advertiser(a) for a in data.advertisers})
    hash_fields(
        keys.API_KEYS,
        {hash_key(f"{DEMO_API_KEY_PREFIX}{a.id}"): str(a.id) for a in data.advertisers},
    )
    for a in data.advertisers:  # the key's record: listed and revocable like any other
        api_key = f"{DEMO_API_KEY_PREFIX}{a.id}"
        record = apikeys.KeyRecord(secret_hash=hash_key(api_key),
                                   prefix=api_key[: apikeys.PREFIX_CHARS], label="demo",
                                   created_ms=a.created_ms)
        pipe.hset(keys.advertiser_keys(a.id), apikeys.derived_key_id(record.secret_hash),
                  apikeys.encode_record(record))
        w.wrote()
    pipe.set(keys.SEQ_ADVERTISER, len(data.advertisers))
    w.wrote()

    by_advertiser: dict[int, list[str]] = {}
    for c in data.campaigns:
        pipe.set(keys.campaign(c.id), encode_campaign(c))
        w.wrote()
        by_advertiser.setdefault(c.advertiser_id, []).append(str(c.id))
    ids = [str(c.id) for c in data.campaigns]
    for start in range(0, len(ids), _HASH_FIELDS_PER_CMD):
        pipe.sadd(keys.CAMPAIGN_IDS, *ids[start : start + _HASH_FIELDS_PER_CMD])
        w.wrote(_HASH_FIELDS_PER_CMD)
    for adv, cids in by_advertiser.items():
        pipe.sadd(keys.advertiser_campaigns(adv), *cids)
        w.wrote(len(cids))
    top_campaign = max((c.id for c in data.campaigns), default=0)
    pipe.set(keys.SEQ_CAMPAIGN, top_campaign)
    w.wrote()

    shoppers = 0
    for shopper_id, segments in data.shoppers:
        if segments:
            pipe.hset(keys.shopper(shopper_id), mapping={f"s:{s}": 1 for s in segments})
            w.wrote()
            shoppers += 1

    for number, (store, qty) in enumerate(sorted(data.stock.items())):
        pipe.hset(keys.STORES, store, number)
        pipe.set(keys.stock(store), encode_quantities(qty))
        w.wrote(len(qty) // 1000 + 1)  # ~100 kB values: keep a round trip's payload bounded

    sizes = data.sizes
    marker = {f: getattr(sizes, f) for f in sizes.__struct_fields__}
    pipe.hset(keys.DEMO_MARKER, mapping={**marker, "seed": data.seed})
    pipe.xadd(keys.CHANGES, {"t": "reload"}, maxlen=FEED_MAXLEN, approximate=True)
    w.wrote(2)
    w.flush()
    return {
        "products": len(data.products),
        "advertisers": len(data.advertisers),
        "campaigns": len(data.campaigns),
        "bids": sum(len(c.bids) for c in data.campaigns),
        "shoppers": shoppers,
        "stock_keys": len(data.stock),
        "commands": w.commands,
    }


def is_empty(client: redis.Redis) -> bool:
    """True when the store holds no products and no campaigns."""
    return int(client.exists(keys.PRODUCTS, keys.CAMPAIGN_IDS)) == 0
