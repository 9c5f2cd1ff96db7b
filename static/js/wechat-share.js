// WeChat's share card (templates/shops/_share_card.html): configure the JS-SDK with the server's signature, then
// set the title, text, picture and link that a share to a chat or to Moments shows.
(function () {
  var data = document.getElementById("wechat-share");
  if (!data || !window.wx) { return; }
  var settings = JSON.parse(data.textContent);
  window.wx.config(settings.config);
  window.wx.ready(function () {
    window.wx.updateAppMessageShareData(settings.share);
    window.wx.updateTimelineShareData({ title: settings.share.title, link: settings.share.link, imgUrl: settings.share.imgUrl });
  });
})();
