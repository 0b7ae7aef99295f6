from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self):
        # The merchant admin's home page shows the analytics overview; the admin site (in the core) only knows the
        # hook, so that the core never imports analytics.
        from analytics.admin import merchant_home_context, program_overview
        from programs.signals import program_overview as overview_signal
        from referral_saas.tenancy.admin_site import merchant_admin

        merchant_admin.set_home_page(template="admin/merchant_dashboard.html", context=merchant_home_context)
        overview_signal.connect(program_overview, dispatch_uid="analytics.program_overview")
