"""The simulated website: an outdoor-gear shop with a journal, help centre and membership.

Paths matter to the truth: the funnel's first step is a page view whose path
is exactly /products (category filters live in the query string) and its third
is exactly /checkout (the confirmation page is /checkout/confirmation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

BASE_URL: Final = "https://www.northwind.example"
_SITE: Final = "Northwind Outfitters"


@dataclass(frozen=True, slots=True)
class Page:
    url: str
    path: str
    title: str
    name: str
    heading: str  # what a link to the page says


@dataclass(frozen=True, slots=True)
class Element:
    selector: str
    text: str
    kind: str  # the element_type: a, button, img, input, ...


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    slug: str
    name: str
    category: str
    price: float


@dataclass(frozen=True, slots=True)
class Campaign:
    source: str
    medium: str
    name: str
    term: str | None
    content: str | None
    referrer: str  # where the visitor clicked the link; "" for e-mail
    lands_on: str  # shop | read | home


def page(path: str, heading: str, name: str, query: dict[str, str] | None = None) -> Page:
    url = f"{BASE_URL}{path}" + (f"?{urlencode(query)}" if query else "")
    return Page(url, path, f"{heading} | {_SITE}", name, heading)


def with_query(at: Page, query: dict[str, str]) -> Page:
    return page(at.path, at.heading, at.name, query)


PRODUCTS: Final = tuple(
    Product(f"NW-{i + 1001}", slug, name, category, price)
    for i, (slug, name, category, price) in enumerate(
        [
            ("storm-shell-jacket", "Storm Shell Jacket", "jackets", 249.0),
            ("ridge-down-parka", "Ridge Down Parka", "jackets", 329.0),
            ("trail-softshell", "Trail Softshell", "jackets", 149.0),
            ("packable-rain-jacket", "Packable Rain Jacket", "jackets", 119.0),
            ("summit-gtx-boot", "Summit GTX Boot", "footwear", 219.0),
            ("fastpack-trail-runner", "Fastpack Trail Runner", "footwear", 139.0),
            ("camp-slide", "Camp Slide", "footwear", 49.0),
            ("alpine-30-pack", "Alpine 30 Pack", "backpacks", 169.0),
            ("daybreak-20-pack", "Daybreak 20 Pack", "backpacks", 89.0),
            ("expedition-65-pack", "Expedition 65 Pack", "backpacks", 289.0),
            ("ultralight-1p-tent", "Ultralight 1P Tent", "tents", 399.0),
            ("basecamp-3p-tent", "Basecamp 3P Tent", "tents", 449.0),
            ("merino-beanie", "Merino Beanie", "accessories", 35.0),
            ("insulated-bottle", "Insulated Bottle 750 ml", "accessories", 32.0),
            ("trekking-poles", "Carbon Trekking Poles", "accessories", 129.0),
            ("headlamp-400", "Headlamp 400", "accessories", 59.0),
        ]
    )
)
CATEGORIES: Final = tuple(sorted({p.category for p in PRODUCTS}))

_POSTS: Final = (
    ("layering-for-winter-hikes", "How to Layer for Winter Hikes"),
    ("choosing-a-backpack", "Choosing the Right Backpack"),
    ("waterproof-vs-water-resistant", "Waterproof vs Water-Resistant"),
    ("first-overnight-trip", "Your First Overnight Trip"),
    ("boot-break-in-guide", "Breaking In New Boots"),
    ("leave-no-trace", "Leave No Trace, Explained"),
)
_DOCS: Final = (
    ("shipping", "Shipping"),
    ("returns", "Returns and Exchanges"),
    ("size-guide", "Size Guide"),
    ("warranty", "Warranty"),
    ("care-instructions", "Care Instructions"),
)

HOME: Final = page("/", "Gear for the Long Way Round", "Home")
CART: Final = page("/cart", "Your Cart", "Cart")
CHECKOUT: Final = page("/checkout", "Checkout", "Checkout")
BLOG: Final = page("/blog", "Journal", "Blog")
PRICING: Final = page("/pricing", "Northwind Membership", "Pricing")
DOCS: Final = page("/docs", "Help Centre", "Help Centre")
ABOUT: Final = page("/about", "About Us", "About")
CONTACT: Final = page("/contact", "Contact Us", "Contact")
LOGIN: Final = page("/login", "Log In", "Log In")
SIGNUP: Final = page("/signup", "Create Your Account", "Sign Up")
ACCOUNT: Final = page("/account", "Your Account", "Account")
ORDERS: Final = page("/account/orders", "Your Orders", "Orders")
WELCOME: Final = page("/account/welcome", "Welcome to Northwind", "Welcome")
POSTS: Final = tuple(page(f"/blog/{slug}", title, "Blog Post") for slug, title in _POSTS)
ARTICLES: Final = tuple(page(f"/docs/{slug}", title, "Help Article") for slug, title in _DOCS)


def listing(category: str | None = None, extra: dict[str, str] | None = None) -> Page:
    query = ({"category": category} if category else {}) | (extra or {})
    return page(
        "/products", category.title() if category else "All Gear", "Products", query or None
    )


def product_page(product: Product) -> Page:
    return page(f"/products/{product.slug}", product.name, "Product")


def search_page(query: str) -> Page:
    return page("/search", f"Search: {query}", "Search", {"q": query})


def confirmation(order_id: str) -> Page:
    return page(
        "/checkout/confirmation",
        "Thank You for Your Order",
        "Order Confirmation",
        {"order": order_id},
    )


# fmt: off
SEARCHES: Final = ("rain jacket", "boots", "tent", "backpack 30l", "merino", "headlamp", "gore-tex")

# Landing referrers of visits that did not come from a campaign; "" is direct.
REFERRERS: Final = (
    ("", 34), ("https://www.google.com/", 40), ("https://www.bing.com/", 6),
    ("https://duckduckgo.com/", 4), ("https://www.reddit.com/", 4),
    ("https://www.facebook.com/", 4), ("https://l.instagram.com/", 4), ("https://t.co/", 2),
    ("https://www.youtube.com/", 2),
)

_GOOGLE, _BING = "https://www.google.com/", "https://www.bing.com/"
CAMPAIGNS: Final = (
    Campaign("google", "cpc", "winter_sale_2026", "waterproof jacket", "rsa_jackets_a", _GOOGLE,
             "shop"),
    Campaign("google", "cpc", "brand_search", "northwind outfitters", None, _GOOGLE, "home"),
    Campaign("bing", "cpc", "winter_sale_2026", "hiking boots", "rsa_boots", _BING, "shop"),
    Campaign("facebook", "paid_social", "winter_sale_2026", None, "carousel_tents",
             "https://www.facebook.com/", "shop"),
    Campaign("instagram", "paid_social", "trail_season", None, "story_packs",
             "https://l.instagram.com/", "shop"),
    Campaign("newsletter", "email", "journal_digest_nov", None, "hero_link", "", "read"),
    Campaign("outdoorgearlab", "affiliate", "best_rain_jackets_2026", None, "review_link",
             "https://www.outdoorgearlab.com/", "shop"),
)

# Paths vulnerability scanners and scripts ask for; no real page has them.
PROBES: Final = ("/wp-login.php", "/.env", "/xmlrpc.php", "/admin", "/wp-admin/setup-config.php",
                 "/.git/config", "/api/v1/users", "/phpmyadmin/", "/server-status", "/config.json")
# fmt: on

# Things on every page a mouse may rest on.
HOVERABLE: Final = (
    Element("nav a[href='/products']", "Shop", "a"),
    Element("nav a[href='/blog']", "Journal", "a"),
    Element("nav a[href='/docs']", "Help", "a"),
    Element("header a.cart-link", "Cart", "a"),
    Element("img.hero__image", "", "img"),
    Element("a.product-card", "", "a"),
    Element("button.newsletter__submit", "Subscribe", "button"),
    Element("footer a.social-link", "Instagram", "a"),
)
