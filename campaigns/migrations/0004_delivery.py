import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0003_entry'),
        ('profiles', '0006_source_in_access'),
    ]

    operations = [
        migrations.CreateModel(
            name='Delivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('step', models.CharField(max_length=200)),
                ('variant', models.CharField(blank=True, default='', max_length=64)),
                ('is_control', models.BooleanField(default=False)),
                ('status', models.CharField(choices=[('queued', 'Queued'), ('sending', 'Sending'), ('sent', 'Sent'), ('skipped', 'Skipped'), ('failed', 'Failed')], default='queued', max_length=16)),
                ('skip_reason', models.CharField(blank=True, choices=[('no_consent', 'No consent'), ('suppressed', 'Suppressed'), ('capped', 'Frequency cap reached'), ('no_address', 'No address'), ('exited', 'Left the journey before the send'), ('channel_disabled', 'Channel disabled')], max_length=32)),
                ('send_after', models.DateTimeField(blank=True, null=True)),
                ('delay_reason', models.CharField(blank=True, default='', max_length=32)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.CharField(blank=True, default='', max_length=300)),
                ('message_digest', models.CharField(blank=True, default='', max_length=64)),
                ('provider_message_id', models.CharField(blank=True, default='', max_length=255)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('opened_at', models.DateTimeField(blank=True, null=True)),
                ('clicked_at', models.DateTimeField(blank=True, null=True)),
                ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='campaigns.campaign')),
                ('channel', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='campaigns.channel')),
                ('profile', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='campaign_deliveries', to='profiles.profile')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='deliveries', to='campaigns.campaignversion')),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='DeliveryEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('open', 'Open'), ('click', 'Click'), ('unsubscribe', 'Unsubscribe'), ('bounce', 'Bounce'), ('complaint', 'Complaint')], max_length=16)),
                ('url', models.URLField(blank=True, default='', max_length=2000)),
                ('at', models.DateTimeField()),
                ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='campaigns.delivery')),
            ],
            options={
                'ordering': ['-at', '-id'],
            },
        ),
        migrations.AddField(
            model_name='delivery',
            name='entry',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='campaigns.entry'),
        ),
        migrations.AddIndex(
            model_name='deliveryevent',
            index=models.Index(fields=['delivery', 'kind'], name='deliveryevent_kind_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['campaign', '-created_at', '-id'], name='delivery_campaign_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['profile', '-created_at', '-id'], name='delivery_profile_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('status', 'sent')), fields=['profile', 'sent_at'], name='delivery_profile_sent_idx'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(condition=models.Q(('status__in', ['queued', 'sending'])), fields=['status', 'updated_at'], name='delivery_pending_idx'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(fields=('version', 'step', 'profile', 'entry'), name='delivery_once_per_step_uniq'),
        ),
    ]
