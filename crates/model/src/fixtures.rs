//! Posts for other crates' tests (feature `fixtures`, on only in their
//! dev-dependencies): one place for what each engine's round trip checks.

use crate::{Card, Media, MediaKind, Post};

/// `post` with every picture field a source gives (issue 16): the author's
/// avatar, a photo with its size and alt text and a video with only its
/// poster, a link card, the sensitive mark and the permalink.
pub fn with_every_picture_field(mut post: Post) -> Post {
    post.author.avatar_url = Some("https://pbs.twimg.com/profile_images/1/a_normal.jpg".into());
    post.has_media = true;
    post.media = vec![
        Media {
            kind: MediaKind::Photo,
            url: Some("https://pbs.twimg.com/media/A.jpg".into()),
            preview_url: Some("https://pbs.twimg.com/media/A.jpg?name=small".into()),
            width: Some(1200),
            height: Some(800),
            alt: Some("지민 on stage".into()),
        },
        Media {
            kind: MediaKind::Video,
            url: Some("https://video.twimg.com/v.mp4".into()),
            preview_url: Some("https://pbs.twimg.com/v.jpg".into()),
            width: None,
            height: None,
            alt: None,
        },
    ];
    post.card = Some(Card {
        url: "https://news.example/a".into(),
        title: "Comeback".into(),
        description: "The new album".into(),
        image_url: Some("https://pbs.twimg.com/card.jpg".into()),
    });
    post.sensitive = true;
    post.permalink = Some(format!("https://x.com/{}/status/{}", post.author.handle, post.id));
    post
}
