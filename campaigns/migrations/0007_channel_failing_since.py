from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0006_channel_previous_secret'),
    ]

    operations = [
        migrations.AddField(
            model_name='channel',
            name='failing_since',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
