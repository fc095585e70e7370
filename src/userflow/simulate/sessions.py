"""One visit, written message by message as the tracker on the page would report it."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, Final

from userflow.simulate import planted, site
from userflow.simulate.incidents import Incidents
from userflow.simulate.messages import (
    Message,
    context,
    iso,
    message,
    new_id,
    page_fields,
    track_fields,
)
from userflow.simulate.site import Element, Page
from userflow.simulate.visitors import SessionPlan, Visitor

_VIEWPORTS: Final = {"desktop": (1920, 1080), "mobile": (390, 844), "tablet": (820, 1180)}
# No pause inside a visit reaches the tracker's 30-minute session timeout.
_LONGEST_PAUSE_S: Final = 600.0


class Walker:
    """The clock, the page and the identity of one visit; each method is something a person does."""

    def __init__(
        self,
        rng: random.Random,
        visitor: Visitor,
        plan: SessionPlan,
        user_id: str | None,
        start_ms: int,
        out: list[tuple[int, Message]],
        incidents: Incidents | None = None,
    ) -> None:
        self.rng = rng
        self.incidents = incidents
        self.visitor = visitor
        self.plan = plan
        self.user_id = user_id
        self.t = start_ms
        self.at = site.HOME  # replaced by the landing page before the first message
        self._session_id = new_id(rng)
        self._out = out
        self._referrer = plan.referrer
        self._experiment: dict[str, str] | None = None
        self._mouse = visitor.agent.device_type == "desktop"
        self._width, self._height = _VIEWPORTS[visitor.agent.device_type]

    def pause(self, median_s: float) -> None:
        seconds = min(_LONGEST_PAUSE_S, self.rng.lognormvariate(math.log(median_s), 0.8))
        self.t += max(50, int(seconds * 1000))

    def _emit(self, kind: str, fields: dict[str, Any]) -> None:
        v = self.visitor
        ctx = context(
            v.agent.ua, v.ip, self._session_id, self.at, self._referrer, self.plan.campaign
        )
        msg = message(kind, new_id(self.rng), v.anonymous_id, self.user_id, self.t, ctx, fields)
        self._out.append((self.t, msg))

    def view(self, page: Page, first: bool = False) -> None:
        if not first:
            self._referrer = self.at.url
        self.at = page
        self._emit("page", page_fields(page, self._referrer, self._experiment))
        # The mini-cart's checkout button, the experiment's subject, shows on every shop page.
        if page.path.startswith("/products") and self._experiment is None:
            exposure = {"experiment_id": planted.EXPERIMENT_ID, "variant": self.visitor.variant}
            self.custom("Experiment Viewed", dict(exposure))
            self._experiment = exposure

    def track(self, event: str, properties: dict[str, Any]) -> None:
        if self._experiment is not None:
            properties |= self._experiment
        self._emit("track", track_fields(event, properties))

    def custom(self, event: str, properties: dict[str, Any]) -> None:
        """A custom event, a few milliseconds after the interaction that fired it."""
        self.t += self.rng.randint(3, 60)
        self.track(event, properties)

    def identify(self, traits: dict[str, Any]) -> None:
        assert self.visitor.user_id is not None, "only visitors with an account identify"
        self.pause(0.3)
        self.user_id = self.visitor.user_id
        # A flag is evaluated again for a new identity; its exposure would be a new event.
        self._experiment = None
        self._emit("identify", {"traits": traits})

    def _pointer(self, element: Element) -> dict[str, Any]:
        return {
            "element_selector": element.selector,
            "element_text": element.text,
            "element_type": element.kind,
            "x": self.rng.randrange(self._width),
            "y": self.rng.randrange(self._height * 3),
        }

    def click(self, element: Element, target: Page | None = None) -> None:
        self.pause(2.5)
        properties = self._pointer(element)
        if target is not None:
            properties["target_url"] = target.url
        self.track("click", properties)

    def go(self, page: Page, link: Element) -> None:
        self.click(link, page)
        self.pause(0.8)
        self.view(page)

    def read(self, low: int, high: int) -> None:
        """Scrolls down the page and, with a mouse, rests it on something now and then."""
        depth = 0
        for _ in range(self.rng.randint(low, high)):
            if self._mouse and self.rng.random() < 0.3:
                self.pause(1.5)
                self.track("hover", self._pointer(self.rng.choice(site.HOVERABLE)))
            else:
                self.pause(6.0)
                depth = min(100, depth + self.rng.randint(15, 40))
                self.track("scroll", {"scroll_depth": depth})

    def type_into(self, selector: str, text: str) -> None:
        tag = selector.split("#")[0]  # input or textarea
        self.pause(1.5)
        for key in text:
            self.pause(0.2)
            self.track("keydown", {"element_selector": selector, "element_type": tag, "key": key})

    def submit(self, form_id: str) -> None:
        self.pause(1.5)
        self.track(
            "form_submit",
            {"form_id": form_id, "element_selector": f"form#{form_id}", "element_type": "form"},
        )


def write_session(
    rng: random.Random,
    visitor: Visitor,
    plan: SessionPlan,
    user_id: str | None,
    start_ms: int,
    out: list[tuple[int, Message]],
    incidents: Incidents | None = None,
) -> tuple[int, str | None]:
    """Appends one visit's messages to out; returns when it ended and who the visitor is by then."""
    w = Walker(rng, visitor, plan, user_id, start_ms, out, incidents)
    w.view(_landing(rng, plan), first=True)
    if plan.intent == "bounce":
        w.read(0, 2)
        return w.t, w.user_id
    if plan.login:
        _login(w)
    if plan.toggle_theme:
        w.click(Element("button#theme-toggle", "Dark mode", "button"))
        w.custom(planted.FEATURE_EVENT, {"feature": planted.FEATURE, "enabled": True})
    _WALKS[plan.intent](w)
    if plan.signup:
        _signup(w)
    return w.t, w.user_id


def _utm(plan: SessionPlan) -> dict[str, str]:
    c = plan.campaign
    assert c is not None
    pairs = (
        ("source", c.source),
        ("medium", c.medium),
        ("campaign", c.name),
        ("term", c.term),
        ("content", c.content),
    )
    return {f"utm_{key}": value for key, value in pairs if value is not None}


def _landing(rng: random.Random, plan: SessionPlan) -> Page:
    if plan.campaign is not None:
        if plan.campaign.lands_on == "shop":
            return site.listing(rng.choice(site.CATEGORIES), _utm(plan))
        if plan.campaign.lands_on == "read":
            return site.with_query(rng.choice(site.POSTS), _utm(plan))
        return site.with_query(site.HOME, _utm(plan))
    if plan.login or plan.intent == "account":
        return site.HOME
    if plan.intent == "shop":
        return rng.choices(
            (
                site.HOME,
                site.listing(rng.choice(site.CATEGORIES)),
                site.product_page(rng.choice(site.PRODUCTS)),
            ),
            (50, 35, 15),
        )[0]
    if plan.intent == "read":
        return rng.choices((site.HOME, site.BLOG, rng.choice(site.POSTS)), (30, 20, 50))[0]
    if plan.intent == "support":
        return rng.choices((site.HOME, site.DOCS, rng.choice(site.ARTICLES)), (40, 30, 30))[0]
    return rng.choices(
        (site.HOME, rng.choice(site.POSTS), site.PRICING, rng.choice(site.ARTICLES), site.ABOUT),
        (35, 35, 10, 10, 10),
    )[0]


def _login(w: Walker) -> None:
    w.read(0, 1)
    w.go(site.LOGIN, Element("header a.login-link", "Log in", "a"))
    w.type_into("input#email", w.visitor.traits["email"][: w.rng.randint(3, 8)])
    w.submit("login-form")
    w.identify(dict(w.visitor.traits))
    w.pause(0.8)
    w.view(site.HOME)


def _signup(w: Walker) -> None:
    w.go(site.SIGNUP, Element("header a.signup-link", "Sign up", "a"))
    w.type_into("input#email", w.visitor.traits["email"][: w.rng.randint(3, 8)])
    w.submit("signup-form")
    w.identify(w.visitor.traits | {"signup_date": iso(w.t)[:10]})
    w.custom("Signed Up", {"method": "email"})
    w.pause(0.8)
    w.view(site.WELCOME)
    w.read(0, 1)


def _shop(w: Walker) -> None:
    rng, depth = w.rng, w.plan.depth
    if w.at.path != "/products":
        w.read(0, 2)
        w.go(site.listing(), Element("nav a[href='/products']", "Shop", "a"))
    w.read(1, 3)
    if rng.random() < 0.2:
        query = rng.choice(site.SEARCHES)
        w.click(Element("input#search", "", "input"))
        w.type_into("input#search", query[: rng.randint(3, 6)])
        w.pause(0.6)
        w.view(site.search_page(query))
        w.read(0, 1)
    chosen = rng.sample(site.PRODUCTS, rng.randint(1, 3))
    for i, product in enumerate(chosen):
        if i and rng.random() < 0.5:
            w.go(
                site.listing(product.category),
                Element("a.breadcrumb", product.category.title(), "a"),
            )
        w.go(site.product_page(product), Element("a.product-card", product.name, "a"))
        w.read(1, 3)
        if rng.random() < 0.5:
            w.click(Element("img.product-gallery__image", product.name, "img"))
        if rng.random() < 0.4:
            w.click(Element("button.size-option", rng.choice(("S", "M", "L", "XL")), "button"))
    if depth < 2:
        return
    product = chosen[-1]
    line = {
        "product_id": product.sku,
        "sku": product.sku,
        "name": product.name,
        "category": product.category,
        "price": product.price,
        "quantity": 1,
    }
    w.click(Element("button#add-to-cart", "Add to cart", "button"))
    w.custom("Product Added", line | {"currency": "USD", "url": w.at.url})
    if depth == 2 and rng.random() < 0.4:
        return
    w.go(site.CART, Element("header a.cart-link", "Cart", "a"))
    w.read(0, 1)
    if depth < 3:
        return
    w.go(site.CHECKOUT, Element("a#checkout-button", "Checkout", "a"))
    w.type_into("input#email", w.visitor.traits["email"][: rng.randint(2, 6)])
    w.type_into("input#address-line1", str(rng.randint(1, 999)))
    if depth < 4:
        return
    w.submit("checkout-form")
    if w.incidents and w.incidents.payment_fails(w.visitor.agent.device_type, w.t):
        # The planted outage: the payment step throws, the visitor gives up.
        w.custom(planted.ERROR_EVENT, {"type": "PaymentError",
                                       "message": "card authorization timed out"})
        return
    order_id = f"NW{rng.randrange(10**7, 10**8)}"
    shipping = 0.0 if product.price >= 100 else 7.95
    w.custom(
        planted.GOAL_EVENT,
        {
            "order_id": order_id,
            "total": product.price + shipping,
            "revenue": product.price,
            "shipping": shipping,
            "currency": "USD",
            "products": [line],
        },
    )
    w.pause(1.2)
    w.view(site.confirmation(order_id))
    w.read(0, 1)


def _read(w: Walker) -> None:
    rng = w.rng
    if not w.at.path.startswith("/blog"):
        w.read(0, 2)
        w.go(site.BLOG, Element("nav a[href='/blog']", "Journal", "a"))
    w.read(0, 2)
    for post in rng.sample([p for p in site.POSTS if p.path != w.at.path], rng.randint(1, 3)):
        w.go(post, Element("a.post-card", post.heading, "a"))
        w.read(1, 4)
    if rng.random() < 0.15:
        w.go(site.PRICING, Element("a.membership-banner", "Become a member", "a"))
        w.read(1, 3)
    if rng.random() < 0.06:
        w.type_into("input#newsletter-email", w.visitor.traits["email"][: rng.randint(3, 8)])
        w.submit("newsletter-form")
        w.custom("Newsletter Subscribed", {"list": "journal"})


def _support(w: Walker) -> None:
    rng = w.rng
    if not w.at.path.startswith("/docs"):
        w.read(0, 1)
        w.go(site.DOCS, Element("nav a[href='/docs']", "Help", "a"))
    w.read(0, 2)
    for article in rng.sample([a for a in site.ARTICLES if a.path != w.at.path], rng.randint(1, 3)):
        w.go(article, Element("a.help-article-link", article.heading, "a"))
        w.read(1, 3)
    if rng.random() < 0.3:
        w.go(site.CONTACT, Element("a.contact-link", "Contact us", "a"))
        w.type_into("textarea#message", "Hi, my ord"[: rng.randint(4, 10)])
        w.submit("contact-form")
        w.custom(
            "Support Request Submitted",
            {"topic": rng.choice(("order", "returns", "sizing", "warranty"))},
        )


def _account(w: Walker) -> None:
    w.go(site.ACCOUNT, Element("header a.account-link", "Account", "a"))
    w.read(0, 1)
    if w.rng.random() < 0.5:
        w.go(site.ORDERS, Element("a.orders-link", "Your orders", "a"))
        w.read(0, 2)


_WALKS: Final[dict[str, Callable[[Walker], None]]] = {
    "shop": _shop,
    "read": _read,
    "support": _support,
    "account": _account,
}
