import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0002_campaign_versions'),
        ('profiles', '0006_source_in_access'),
    ]

    operations = [
        migrations.CreateModel(
            name='Entry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('status', models.CharField(choices=[('active', 'Active'), ('completed', 'Completed'), ('exited', 'Exited')], default='active', max_length=16)),
                ('exit_reason', models.CharField(blank=True, choices=[('goal', 'Reached the goal'), ('archived', 'The campaign was archived')], max_length=16)),
                ('step_path', models.JSONField(default=list)),
                ('due_at', models.DateTimeField(blank=True, null=True)),
                ('trigger', models.JSONField(blank=True, default=dict)),
                ('entered_at', models.DateTimeField()),
                ('goal_until', models.DateTimeField(blank=True, null=True)),
                ('converted_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('campaign', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='entries', to='campaigns.campaign')),
                ('profile', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='campaign_entries', to='profiles.profile')),
                ('version', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='campaigns.campaignversion')),
            ],
            options={
                'ordering': ['-entered_at', '-id'],
            },
        ),
        migrations.AddIndex(
            model_name='entry',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['due_at'], name='entry_due_idx'),
        ),
        migrations.AddIndex(
            model_name='entry',
            index=models.Index(fields=['profile', 'campaign'], name='entry_profile_campaign_idx'),
        ),
        migrations.AddConstraint(
            model_name='entry',
            constraint=models.UniqueConstraint(fields=('campaign', 'profile', 'number'), name='entry_campaign_profile_number_uniq'),
        ),
    ]
