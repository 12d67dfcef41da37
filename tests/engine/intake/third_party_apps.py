"""Fifteen more third-party packages whose migration histories the intake is checked against.

Installed by the `test` extra (pinned in pyproject.toml). The reference run's INSTALLED_APPS are
INSTALLED_HISTORY_APPS (intake_support) followed by THIRD_PARTY_HISTORY_APPS, deduplicated:
every app below that ships a migrations folder, and the apps those need to load. No two apps
of the combination share a label. The middleware and settings are only what `manage.py
migrate --skip-checks` needs; the settings are plain JSON, passed as SQL_REFERENCE_SETTINGS.
"""

from __future__ import annotations

THIRD_PARTY_HISTORY_APPS: list[str] = [
    # prerequisites
    "django.contrib.sites",
    "django.contrib.flatpages",
    "rest_framework",
    # django-oscar: every app with migrations, plus checkout and search (no migrations) whose
    # classes their ready() loads; by AppConfig path, as Oscar's class loader needs OscarConfigs
    "oscar.apps.checkout.apps.CheckoutConfig",
    "oscar.apps.address.apps.AddressConfig",
    "oscar.apps.analytics.apps.AnalyticsConfig",
    "oscar.apps.basket.apps.BasketConfig",
    "oscar.apps.catalogue.apps.CatalogueConfig",
    "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
    "oscar.apps.communication.apps.CommunicationConfig",
    "oscar.apps.customer.apps.CustomerConfig",
    "oscar.apps.offer.apps.OfferConfig",
    "oscar.apps.order.apps.OrderConfig",
    "oscar.apps.partner.apps.PartnerConfig",
    "oscar.apps.payment.apps.PaymentConfig",
    "oscar.apps.shipping.apps.ShippingConfig",
    "oscar.apps.voucher.apps.VoucherConfig",
    "oscar.apps.wishlists.apps.WishlistsConfig",
    "oscar.apps.search.apps.SearchConfig",
    # django-cms
    "cms",
    "menus",
    "treebeard",
    "sekizai",
    # django-axes
    "axes",
    # django-otp and its plugins
    "django_otp",
    "django_otp.plugins.otp_email",
    "django_otp.plugins.otp_hotp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    # the rest
    "waffle",
    "constance",
    "silk",
    "post_office",
    "django_q",
    "rest_framework_simplejwt.token_blacklist",
    "organizations",
    "polymorphic",
    "push_notifications",
    "two_factor",
    "two_factor.plugins.phonenumber",
    "two_factor.plugins.webauthn",
    "knox",
]

THIRD_PARTY_HISTORY_MIDDLEWARE: list[str] = []

THIRD_PARTY_DJANGO_SETTINGS: dict[str, object] = {
    # Oscar's apps read these at import time or in ready() (oscar.defaults is applied by no app);
    # values as in oscar.defaults, lazy ones as plain strings.
    "OSCAR_REQUIRED_ADDRESS_FIELDS": ["first_name", "last_name", "line1", "line4", "postcode", "country"],
    "OSCAR_DYNAMIC_CLASS_LOADER": "oscar.core.loading.default_class_loader",
    "OSCAR_SLUG_ALLOW_UNICODE": False,
    "OSCAR_DELETE_IMAGE_FILES": True,
    "OSCAR_SEARCH_FACETS": {
        "fields": {
            "product_class": {"name": "Type", "field": "product_class"},
            "rating": {"name": "Rating", "field": "rating"},
        },
        "queries": {
            "price_range": {
                "name": "Price range",
                "field": "price",
                "queries": [
                    ["0 to 20", "[0 TO 20]"],
                    ["20 to 40", "[20 TO 40]"],
                    ["40 to 60", "[40 TO 60]"],
                    ["60+", "[60 TO *]"],
                ],
            }
        },
    },
    "OSCAR_PRODUCTS_PER_PAGE": 20,
    "OSCAR_OFFERS_PER_PAGE": 20,
    "OSCAR_REVIEWS_PER_PAGE": 20,
    "OSCAR_EMAILS_PER_PAGE": 20,
    "OSCAR_ORDERS_PER_PAGE": 20,
    "OSCAR_ADDRESSES_PER_PAGE": 20,
    "OSCAR_NOTIFICATIONS_PER_PAGE": 20,
    "OSCAR_RECENTLY_VIEWED_COOKIE_NAME": "oscar_history",
    "OSCAR_RECENTLY_VIEWED_COOKIE_LIFETIME": 604800,
    "OSCAR_RECENTLY_VIEWED_COOKIE_SECURE": False,
    "OSCAR_RECENTLY_VIEWED_PRODUCTS": 20,
    "OSCAR_EAGER_ALERTS": True,
    "OSCAR_BULK_INTERMEDIATE_SESSION_KEY": "bulk_intermediate",
    "OSCAR_BULK_INTERMEDIATE_TOKEN_PARAM": "key",
    "OSCAR_BULK_INTERMEDIATE_SESSION_TTL_SECONDS": 86400,
    "OSCAR_MAX_BULK_INTERMEDIATE_IDS": 500,
    "OSCAR_ACCOUNTS_REDIRECT_URL": "customer:profile-view",
    "OSCAR_HOMEPAGE": "/",
    # oscar.apps.search imports haystack, which refuses to load without a connection
    "HAYSTACK_CONNECTIONS": {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}},
    # cms's ready() demands a Django template engine with the request context processor
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
        }
    ],
    # two_factor.plugins.webauthn's ready() refuses an empty relying-party name
    "TWO_FACTOR_WEBAUTHN_RP_NAME": "Schemagate SQL reference",
}

# What a project using these apps puts in its intake_settings (docs/intake.md explains each):
# the settings its migration files read, the constants they import, and the two custom
# operations Django would run with their own code. Custom fields and helpers of these packages
# are in the service's registry and need nothing here.
THIRD_PARTY_INTAKE_SETTINGS: dict[str, object] = {
    "default_auto_field": "django.db.models.BigAutoField",
    "setting_values": {
        "django.conf.settings.CMS_TEMPLATES": [],
        # cms.models.PageContent.TEMPLATE_DEFAULT, with CMS_TEMPLATE_INHERITANCE on (the default)
        "cms.models.PageContent.TEMPLATE_DEFAULT": "INHERIT",
    },
    "operation_map": {
        # An AddField that skips a unique constraint only on SQLite installs with versioning.
        "cms.migrations.0044_pagecontent_slug_overwrite_url.AddFieldKeepingDatabaseUniqueness": {
            "as": "operation",
            "operation": "django.db.migrations.AddField",
        },
        # Creates the table its attribute describes unless an older install already has it.
        "two_factor.plugins.phonenumber.migrations.0001_squashed_0001_initial.CreatePhoneDevice": {
            "as": "attribute",
            "attribute": "create_model_operation",
        },
    },
}
