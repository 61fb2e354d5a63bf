from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0005_delivery_skip_reason_bounced'),
    ]

    operations = [
        migrations.AddField(
            model_name='channel',
            name='previous_secret_salt',
            field=models.CharField(blank=True, editable=False, max_length=32),
        ),
        migrations.AddField(
            model_name='channel',
            name='previous_secret_until',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
