"""Default purposes and the default consent-category mapping. Safe to rerun: existing rows are
left as operators edited them."""

from django.db import migrations


def install(apps, schema_editor):
    from consent.defaults import defaults_install

    defaults_install(
        apps.get_model("consent", "Purpose"), apps.get_model("consent", "ConsentCategoryMapping")
    )


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
